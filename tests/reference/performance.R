# performance's R² for mixed models (Nakagawa, Johnson and Schielzeth 2017) and intraclass
# correlations, with insight's variance components behind them, for lme4 fits.
# Needs R with lme4, performance and jsonlite (Debian: r-cran-lme4 r-cran-performance
# r-cran-jsonlite). Run from the repository root:   Rscript tests/reference/performance.R
# Writes tests/reference/performance.json
suppressPackageStartupMessages({ library(lme4); library(performance); library(jsonlite) })
source("tests/reference/common.R")

cbpp$obs <- factor(seq_len(nrow(cbpp)))
# lme4_glmer_nb.R's simulated counts (written there into its JSON)
counts <- fromJSON("tests/reference/lme4_glmer_nb.json")$data
counts$g <- factor(counts$g)
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
  poisson = quote(glmer(incidence ~ period + (1 | herd), cbpp, poisson)),
  negbin = quote(glmer.nb(y ~ x + (1 | g), counts)))

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
# check_overdispersion(): Pearson's χ² of count and binomial-trials GLMMs (adaptive
# quadrature, where lmerpy's fits agree with lme4's to about 1e-5)
overdispersion_fits <- list(
  poisson = quote(glmer(incidence ~ period + (1 | herd), cbpp, poisson, nAGQ = 25)),
  binomial = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                         binomial, nAGQ = 25)),
  poisson_obs = quote(glmer(incidence ~ period + (1 | herd) + (1 | obs), cbpp, poisson)),
  negbin = quote(glmer.nb(y ~ x + (1 | g), counts)))
overdispersion <- lapply(overdispersion_fits, function(call) {
  fit <- suppressMessages(suppressWarnings(eval(call)))
  od <- check_overdispersion(fit)
  # the verdict is a message (stderr): appended to the printed lines
  msgs <- character(0)
  lines <- withCallingHandlers(capture.output(print(od)), message = function(m) {
    msgs <<- c(msgs, sub("\n$", "", conditionMessage(m))); invokeRestart("muffleMessage") })
  list(call = paste(deparse(call), collapse = " "), fixef = unname(fixef(fit)),
       theta = unname(getME(fit, "theta")), logLik = as.numeric(logLik(fit)),
       chisq = od$chisq_statistic,
       ratio = od$dispersion_ratio, df = od$residual_df, p = od$p_value,
       lines = c(lines, msgs))
})

# model_performance(): the indices in one table
performance_fits <- list(
  slopes = quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)),
  ml = quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)),
  crossed = quote(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)),
  binomial = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                         binomial, nAGQ = 25)),
  poisson = quote(glmer(incidence ~ period + (1 | herd), cbpp, poisson, nAGQ = 25)),
  negbin = quote(glmer.nb(y ~ x + (1 | g), counts)))
indices <- c("AIC", "AICc", "BIC", "R2_conditional", "R2_marginal", "ICC", "RMSE", "Sigma",
             "Log_loss", "Score_log", "Score_spherical")
performance_tables <- lapply(performance_fits, function(call) {
  fit <- suppressMessages(suppressWarnings(eval(call)))
  mp <- suppressMessages(suppressWarnings(model_performance(fit)))
  list(call = paste(deparse(call), collapse = " "),
       values = as.list(as.data.frame(mp)[1, intersect(indices, names(mp))]),
       lines = capture.output(suppressMessages(print(mp))))
})

# check_collinearity(): (generalized) VIFs of the fixed-effect terms, with their intervals
collinear <- two_factor_data()
set.seed(5)
collinear$z <- round(0.8 * collinear$x + rnorm(144, sd = 0.5), 3)
collinearity_fits <- list(
  interaction = quote(lmer(y ~ A * x + z + (1 | g), collinear)),
  factors = quote(lmer(y ~ A + B + x + (1 | g), collinear)),
  poisson = quote(glmer(incidence ~ period + size + (1 | herd), cbpp, poisson)))
collinearity <- lapply(collinearity_fits, function(call) {
  fit <- suppressMessages(suppressWarnings(eval(call)))
  cc <- suppressWarnings(check_collinearity(fit))
  list(call = paste(deparse(call), collapse = " "), table = as.list(as.data.frame(cc)))
})

out <- list(performance_version = as.character(packageVersion("performance")),
            insight_version = as.character(packageVersion("insight")),
            lme4_version = as.character(packageVersion("lme4")),
            fits = lapply(fits, describe), overdispersion = overdispersion,
            model_performance = performance_tables, collinearity = collinearity,
            collinear_data = collinear)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE, null = "null"),
           "tests/reference/performance.json")
