# Reference GLMM fits with a dispersion parameter (Gamma, Gaussian with a non-identity link)
# from real glmmTMB runs: its Laplace approximation treats the dispersion φ as a parameter
# of the likelihood, as lmerpy does (lme4 1.1's glmer approximates φ after the fact; see
# docs/glmer.md). Run from the repository root, after tests/reference/lme4_glmer.R wrote
# sim_gamma.csv.gz:   Rscript tests/reference/glmmtmb_dispersion.R
# Writes tests/reference/glmmtmb_dispersion.json.
suppressPackageStartupMessages({
  library(glmmTMB); library(emmeans); library(performance); library(jsonlite)
})  # Debian: r-cran-glmmtmb r-cran-emmeans r-cran-performance r-cran-jsonlite
source("tests/reference/common.R")

sim_gamma <- read.csv("tests/reference/sim_gamma.csv.gz")
fits <- list(
  gamma_log = list(rt ~ cond + x + (1 | subject) + (1 | item), Gamma(link = "log")),
  gamma_identity = list(rt ~ cond + (1 | subject), Gamma(link = "identity")),
  gamma_inverse = list(rt_s ~ x + (x | subject), Gamma(link = "inverse")),
  gaussian_log = list(rt_s ~ x + (1 | subject), gaussian(link = "log")),
  gaussian_inverse = list(rt_s ~ cond + (1 | subject), gaussian(link = "inverse"))
)

describe <- function(spec) {
  fam_ <- spec[[2]]
  assign("fam_", fam_, envir = globalenv())
  call <- bquote(glmmTMB(.(spec[[1]]), data = sim_gamma, family = fam_))
  quiet <- fit_quietly(call)
  fit <- quiet$fit
  vc <- VarCorr(fit)$cond
  terms <- lapply(names(vc), function(g) {
    v <- vc[[g]]
    list(group = g, names = colnames(v), sd = unname(attr(v, "stddev")),
         corr = unname(as.matrix(attr(v, "correlation"))))
  })
  re <- ranef(fit)$cond
  ranefs <- lapply(names(re), function(g) list(group = g, levels = rownames(re[[g]]),
                                               values = unname(as.matrix(re[[g]]))))
  cf <- summary(fit)$coefficients$cond
  list(
    formula = paste(deparse(spec[[1]], width.cutoff = 500), collapse = " "),
    family = fam_$family, link = fam_$link, messages = quiet$messages,
    warnings = quiet$warnings,
    logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
    AIC = AIC(fit), BIC = BIC(fit), df_resid = df.residual(fit), nobs = nobs(fit),
    sigma = sigma(fit), fixef = unname(fixef(fit)$cond), fixef_names = names(fixef(fit)$cond),
    se = unname(cf[, "Std. Error"]), zvalue = unname(cf[, "z value"]),
    pvalue = unname(cf[, "Pr(>|z|)"]), vcov = unname(as.matrix(vcov(fit)$cond)),
    varcorr = terms, ranef = ranefs,
    fitted = unname(fitted(fit)), eta = unname(predict(fit, type = "link")),
    resid_pearson = unname(residuals(fit, type = "pearson")),
    resid_response = unname(residuals(fit, type = "response"))
  )
}

out <- lapply(fits, describe)

# the inference tools on two of the fits: emmeans (on the response scale), performance's R²,
# ICC and model table (insight takes φ as the distribution-specific variance of a Gamma
# model, Nakagawa et al.'s delta method, and σ² for a Gaussian one)
quiet <- function(expr) suppressMessages(suppressWarnings(expr))
inference <- lapply(c("gamma_log", "gaussian_log"), function(name) {
  spec <- fits[[name]]
  fam_ <- spec[[2]]
  assign("fam_", fam_, envir = globalenv())
  fit <- eval(bquote(glmmTMB(.(spec[[1]]), data = sim_gamma, family = fam_)), globalenv())
  r2 <- quiet(r2_nakagawa(fit)); ic <- quiet(icc(fit))
  v <- quiet(insight::get_variance(fit))
  mp <- quiet(model_performance(fit))
  emm <- if ("cond" %in% all.vars(spec[[1]])) {
    e <- emmeans(fit, pairwise ~ cond, type = "response")
    list(means = as.data.frame(summary(e$emmeans)), contrasts = as.data.frame(e$contrasts))
  }
  list(r2_conditional = unname(r2$R2_conditional), r2_marginal = unname(r2$R2_marginal),
       icc_adjusted = ic$ICC_adjusted, icc_unadjusted = ic$ICC_unadjusted,
       var_fixed = v$var.fixed, var_random = v$var.random, var_residual = v$var.residual,
       r2_lines = capture.output(print(r2)), icc_lines = capture.output(print(ic)),
       performance = as.list(as.data.frame(mp)[1, ]),
       performance_lines = capture.output(quiet(print(mp))), emmeans = emm)
})
names(inference) <- c("gamma_log", "gaussian_log")

# profile-likelihood intervals: glmmTMB's confint(method = "profile") for β and the random
# effect's log sd, and TMB's tmbprofile for betad = log(1/φ), turned into σ = √φ
prof_fit <- glmmTMB(rt_s ~ x + (1 | subject), sim_gamma, family = Gamma(link = "log"))
ci <- confint(prof_fit, method = "profile")
disp <- confint(TMB::tmbprofile(prof_fit$obj, name = which(names(prof_fit$fit$par) == "betad"),
                                trace = FALSE))
profile_ref <- list(formula = "rt_s ~ x + (1 | subject)", family = "Gamma", link = "log",
                    names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
                    sigma = sort(unname(exp(-disp[1, ] / 2))))

writeLines(toJSON(list(glmmTMB_version = as.character(packageVersion("glmmTMB")),
                       R_version = R.version.string, fits = out, inference = inference,
                       profile = profile_ref),
                  digits = NA, auto_unbox = TRUE, null = "null", matrix = "rowmajor"),
           "tests/reference/glmmtmb_dispersion.json")
cat("wrote tests/reference/glmmtmb_dispersion.json\n")
