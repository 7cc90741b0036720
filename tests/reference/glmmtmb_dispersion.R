# Reference GLMM fits with a dispersion parameter (Gamma, Gaussian with a non-identity link)
# from real glmmTMB runs: its Laplace approximation treats the dispersion φ as a parameter
# of the likelihood, as lmerpy does (lme4 1.1's glmer approximates φ after the fact; see
# docs/glmer.md). Run from the repository root, after tests/reference/lme4_glmer.R wrote
# sim_gamma.csv.gz:   Rscript tests/reference/glmmtmb_dispersion.R
# Writes tests/reference/glmmtmb_dispersion.json.
suppressPackageStartupMessages({ library(glmmTMB); library(jsonlite) })
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
writeLines(toJSON(list(glmmTMB_version = as.character(packageVersion("glmmTMB")),
                       R_version = R.version.string, fits = out),
                  digits = NA, auto_unbox = TRUE, null = "null", matrix = "rowmajor"),
           "tests/reference/glmmtmb_dispersion.json")
cat("wrote tests/reference/glmmtmb_dispersion.json\n")
