# performance's R² for mixed models (Nakagawa, Johnson and Schielzeth 2017) and intraclass
# correlations, with insight's variance components behind them, for lme4 fits.
# Needs R with lme4, performance and jsonlite (Debian: r-cran-lme4 r-cran-performance
# r-cran-jsonlite). Run from the repository root:   Rscript tests/reference/performance.R
# Writes tests/reference/performance.json
suppressPackageStartupMessages({ library(lme4); library(performance); library(jsonlite) })

cbpp$obs <- factor(seq_len(nrow(cbpp)))
fits <- list(
  slopes = quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)),
  intercept = quote(lmer(Reaction ~ Days + (1 | Subject), sleepstudy)),
  uncorrelated = quote(lmer(Reaction ~ Days + (Days || Subject), sleepstudy)),
  ml = quote(lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE)),
  crossed = quote(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)),
  nested = quote(lmer(strength ~ 1 + (1 | batch / cask), Pastes)),
  binomial = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                         binomial)),
  probit = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                       binomial(link = "probit"))),
  poisson = quote(glmer(incidence ~ period + (1 | herd), cbpp, poisson)))

describe <- function(call) {
  fit <- suppressMessages(suppressWarnings(eval(call)))
  quiet <- function(expr) suppressMessages(suppressWarnings(expr))
  r2 <- quiet(r2_nakagawa(fit))
  ic <- quiet(icc(fit))
  v <- quiet(insight::get_variance(fit))
  by <- quiet(tryCatch(icc(fit, by_group = TRUE), error = function(e) NULL))
  list(call = paste(deparse(call), collapse = " "),
       r2_conditional = unname(r2$R2_conditional), r2_marginal = unname(r2$R2_marginal),
       icc_adjusted = ic$ICC_adjusted, icc_unadjusted = ic$ICC_unadjusted,
       var_fixed = v$var.fixed, var_random = v$var.random,
       var_residual = v$var.residual, var_distribution = v$var.distribution,
       r2_lines = capture.output(print(r2)), icc_lines = capture.output(print(ic)),
       by_group = if (is.null(by)) NULL else
         list(group = as.character(by$Group), icc = by$ICC,
              lines = capture.output(print(by))))
}
out <- list(performance_version = as.character(packageVersion("performance")),
            insight_version = as.character(packageVersion("insight")),
            lme4_version = as.character(packageVersion("lme4")),
            fits = lapply(fits, describe))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE, null = "null"),
           "tests/reference/performance.json")
