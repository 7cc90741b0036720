# Reference fits from real lme4 runs, for the exact engine and the result object.
# Run from the repository root:   Rscript tests/reference/lme4_fits.R
# Writes tests/reference/lme4_fits.json and the simulated data tests/reference/sim_crossed.csv.gz
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
source("tests/reference/common.R")

# A simulated crossed data set with 50,000 rows (kept so Python fits the very same rows).
set.seed(20261122)
n <- 50000
g1 <- sample(sprintf("a%03d", 1:400), n, replace = TRUE)
g2 <- sample(sprintf("b%02d", 1:60), n, replace = TRUE)
x <- round(rnorm(n), 4)
b1 <- rnorm(400, sd = 1.5); names(b1) <- sprintf("a%03d", 1:400)
b2 <- rnorm(60, sd = 0.7); names(b2) <- sprintf("b%02d", 1:60)
y <- round(2 + 0.5 * x + b1[g1] + b2[g2] + rnorm(n, sd = 2), 4)
sim <- data.frame(y = y, x = x, g1 = g1, g2 = g2)
gz <- gzfile("tests/reference/sim_crossed.csv.gz", "w")
write.csv(sim, gz, row.names = FALSE)
close(gz)
sim <- read.csv("tests/reference/sim_crossed.csv.gz")

sleep_w <- sleepstudy
sleep_w$w <- rep(c(1, 2, 0.5), length.out = nrow(sleep_w))
sleep_w$Days2 <- 2 * sleep_w$Days

fits <- list(
  sleep_reml = list("sleepstudy", Reaction ~ Days + (Days | Subject), TRUE),
  sleep_ml = list("sleepstudy", Reaction ~ Days + (Days | Subject), FALSE),
  sleep_uncorr = list("sleepstudy", Reaction ~ Days + (Days || Subject), TRUE),
  sleep_quad = list("sleepstudy", Reaction ~ Days + I(Days^2) + (Days | Subject), TRUE),
  sleep_int = list("sleepstudy", Reaction ~ Days + (1 | Subject), TRUE),
  sleep_weights = list("sleep_w", Reaction ~ Days + (Days | Subject), TRUE, "w"),
  sleep_weights_ml = list("sleep_w", Reaction ~ Days + (Days | Subject), FALSE, "w"),
  sleep_offset = list("sleepstudy", Reaction ~ Days + offset(2 * Days) + (1 | Subject), TRUE),
  sleep_rankdef = list("sleep_w", Reaction ~ Days + Days2 + (1 | Subject), TRUE),
  dyestuff = list("Dyestuff", Yield ~ 1 + (1 | Batch), TRUE),
  dyestuff_ml = list("Dyestuff", Yield ~ 1 + (1 | Batch), FALSE),
  dyestuff2 = list("Dyestuff2", Yield ~ 1 + (1 | Batch), TRUE),
  penicillin = list("Penicillin", diameter ~ 1 + (1 | plate) + (1 | sample), TRUE),
  pastes = list("Pastes", strength ~ 1 + (1 | batch/cask), TRUE),
  sim_crossed = list("sim_crossed", y ~ x + (1 | g1) + (1 | g2), TRUE)
)
datasets <- list(sleepstudy = sleepstudy, sleep_w = sleep_w, Dyestuff = Dyestuff,
                 Dyestuff2 = Dyestuff2, Penicillin = Penicillin, Pastes = Pastes,
                 sim_crossed = sim)

describe <- function(spec) {
  data <- datasets[[spec[[1]]]]
  # build the call with the data set's own name, so summary() prints "Data: sleepstudy"
  assign(spec[[1]], data, envir = globalenv())
  call <- if (length(spec) >= 4)
    bquote(lmer(.(spec[[2]]), data = .(as.name(spec[[1]])), REML = .(spec[[3]]),
                weights = .(as.name(spec[[4]]))))
  else bquote(lmer(.(spec[[2]]), data = .(as.name(spec[[1]])), REML = .(spec[[3]])))
  quiet <- fit_quietly(call)
  fit <- quiet$fit; msgs <- quiet$messages; warns <- quiet$warnings
  vc <- as.data.frame(VarCorr(fit))
  ranefs <- describe_ranef(fit)
  s <- summary(fit)
  coefs <- coef(s)
  list(
    data = spec[[1]], formula = paste(deparse(spec[[2]], width.cutoff = 500), collapse = " "),
    REML = spec[[3]], weights = if (length(spec) >= 4) spec[[4]] else NULL,
    messages = msgs, warnings = warns,
    deviance = if (spec[[3]]) NULL else deviance(fit), REMLcrit = if (spec[[3]]) REMLcrit(fit) else NULL,
    objective = unname(getME(fit, "devcomp")$cmp[if (spec[[3]]) "REML" else "dev"]),
    logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
    AIC = AIC(fit), BIC = BIC(fit), nobs = nobs(fit), ngrps = as.list(ngrps(fit)),
    sigma = sigma(fit), theta = unname(getME(fit, "theta")),
    fixef = as.list(fixef(fit)), fixef_names = names(fixef(fit)),
    se = unname(coefs[, "Std. Error"]), tvalue = unname(coefs[, "t value"]),
    vcov = unname(as.matrix(vcov(fit))),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    ranef = ranefs,
    coef = lapply(coef(fit), function(d) unname(as.matrix(d))),
    isSingular = isSingular(fit),
    fitted_head = unname(head(fitted(fit), 10)),
    resid_head = unname(head(residuals(fit), 10)),
    pearson_head = unname(head(residuals(fit, type = "pearson"), 10)),
    confint_wald = unname(confint(fit, method = "Wald", parm = "beta_")),
    summary = capture.output(print(s)),
    varcorr_print = capture.output(print(VarCorr(fit)))
  )
}

out <- lapply(fits, describe)
names(out) <- names(fits)

m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
m1 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
a <- suppressMessages(anova(m0, m1))
anova_ref <- list(rows = rownames(a), npar = a$npar, AIC = a$AIC, BIC = a$BIC,
                  logLik = a$logLik, deviance = a$deviance,
                  Chisq = a$Chisq, Df = a$Df, p = a[["Pr(>Chisq)"]],
                  print = capture.output(print(a)))

# predictions on new data (population level and with random effects, incl. a new subject)
nd <- data.frame(Days = c(0, 5, 9, 3), Subject = c("308", "335", "372", "999"))
pred <- list(
  re = unname(predict(m1, newdata = nd, allow.new.levels = TRUE)),
  pop = unname(predict(m1, newdata = nd, re.form = NA))
)

writeLines(toJSON(list(lme4_version = as.character(packageVersion("lme4")),
                       R_version = R.version.string, fits = out, anova = anova_ref,
                       predict = pred, predict_newdata = nd),
                  digits = NA, auto_unbox = TRUE, null = "null", matrix = "rowmajor"),
           "tests/reference/lme4_fits.json")
cat("wrote tests/reference/lme4_fits.json\n")
