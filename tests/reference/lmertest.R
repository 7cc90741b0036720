# lmerTest's Satterthwaite t-tests of the fixed effects: summary(m) of an lmerModLmerTest fit
# (degrees of freedom, p-values, the printed table), and the asymptotic covariance of the
# variance parameters (θ, σ) it derives them from.
# Needs R with lme4, lmerTest and jsonlite (Debian: r-cran-lme4 r-cran-lmertest r-cran-jsonlite).
# Run from the repository root:   Rscript tests/reference/lmertest.R
# Writes tests/reference/lmertest.json
suppressPackageStartupMessages({ library(lmerTest); library(jsonlite) })

sleep_w <- sleepstudy
sleep_w$w <- rep(c(1, 2, 0.5), length.out = nrow(sleep_w))
fits <- list(
  sleep_reml = list(quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)), "sleepstudy"),
  sleep_ml_quad = list(quote(lmer(Reaction ~ Days + I(Days^2) + (1 | Subject), sleepstudy,
                                  REML = FALSE)), "sleepstudy"),
  sleep_uncorr = list(quote(lmer(Reaction ~ Days + (Days || Subject), sleepstudy)),
                      "sleepstudy"),
  sleep_weights = list(quote(lmer(Reaction ~ Days + (Days | Subject), sleep_w, weights = w)),
                       "sleep_w"),
  penicillin = list(quote(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)),
                    "Penicillin"),
  pastes = list(quote(lmer(strength ~ 1 + (1 | batch / cask), Pastes)), "Pastes"))

describe <- function(spec) {
  fit <- suppressMessages(suppressWarnings(eval(spec[[1]], globalenv())))
  cf <- coef(summary(fit))
  list(data = spec[[2]], formula = paste(deparse(formula(fit)), collapse = " "),
       REML = isREML(fit), names = rownames(cf),
       estimate = unname(cf[, "Estimate"]), se = unname(cf[, "Std. Error"]),
       df = unname(cf[, "df"]), t = unname(cf[, "t value"]), p = unname(cf[, "Pr(>|t|)"]),
       vcov_varpar = unname(fit@vcov_varpar),
       summary = capture.output(print(summary(fit))))
}
# contest1D(): a contrast's t-test, e.g. the mean reaction on day 5
sleep <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
day5 <- contest1D(sleep, c(1, 5))
out <- list(lmerTest_version = as.character(packageVersion("lmerTest")),
            lme4_version = as.character(packageVersion("lme4")),
            fits = lapply(fits, describe),
            contrast = list(L = c(1, 5), estimate = day5$Estimate, se = day5[["Std. Error"]],
                            df = day5$df, t = day5[["t value"]], p = day5[["Pr(>|t|)"]]))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/lmertest.json")
