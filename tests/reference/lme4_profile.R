# Confidence intervals from real lme4 runs: profile (confint's default) and parametric
# bootstrap, with boot.ci's percentile rule.
# Run from the repository root:   Rscript tests/reference/lme4_profile.R
# Writes tests/reference/lme4_profile.json (committed; the tests read it, R not needed).
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
source("tests/reference/common.R")

sleep_w <- sleepstudy
sleep_w$w <- rep(c(1, 2, 0.5), length.out = nrow(sleep_w))

fits <- list(
  sleep_reml = list("sleepstudy", Reaction ~ Days + (Days | Subject), TRUE),
  sleep_ml = list("sleepstudy", Reaction ~ Days + (Days | Subject), FALSE),
  sleep_uncorr = list("sleepstudy", Reaction ~ Days + (Days || Subject), TRUE),
  sleep_int = list("sleepstudy", Reaction ~ Days + (1 | Subject), TRUE),
  sleep_weights = list("sleep_w", Reaction ~ Days + (Days | Subject), TRUE, "w"),
  sleep_offset = list("sleepstudy", Reaction ~ Days + offset(2 * Days) + (1 | Subject), FALSE),
  dyestuff = list("Dyestuff", Yield ~ 1 + (1 | Batch), TRUE),
  dyestuff2 = list("Dyestuff2", Yield ~ 1 + (1 | Batch), TRUE),
  penicillin = list("Penicillin", diameter ~ 1 + (1 | plate) + (1 | sample), TRUE),
  pastes = list("Pastes", strength ~ 1 + (1 | batch/cask), TRUE)
)
datasets <- list(sleepstudy = sleepstudy, sleep_w = sleep_w, Dyestuff = Dyestuff,
                 Dyestuff2 = Dyestuff2, Penicillin = Penicillin, Pastes = Pastes)

intervals <- function(fit, level, parm = NULL) {
  quiet <- if (is.null(parm)) fit_quietly(bquote(confint(fit, level = .(level))))
           else fit_quietly(bquote(confint(fit, level = .(level), parm = .(parm))))
  ci <- quiet$fit
  list(level = level, rows = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
       columns = colnames(ci), warnings = quiet$warnings, messages = quiet$messages)
}

describe <- function(spec) {
  data <- datasets[[spec[[1]]]]
  assign("data", data, envir = globalenv())
  call <- if (length(spec) >= 4)
    bquote(lmer(.(spec[[2]]), data = data, REML = .(spec[[3]]), weights = .(as.name(spec[[4]]))))
  else bquote(lmer(.(spec[[2]]), data = data, REML = .(spec[[3]])))
  fit <- fit_quietly(call)$fit
  assign("fit", fit, envir = globalenv())
  ml <- if (spec[[3]]) refitML(fit) else fit
  list(data = spec[[1]], formula = paste(deparse(spec[[2]], width.cutoff = 500), collapse = " "),
       REML = spec[[3]], weights = if (length(spec) >= 4) spec[[4]] else NULL,
       ml_deviance = deviance(ml), ml_sigma = sigma(ml), ml_fixef = unname(fixef(ml)),
       confint = intervals(fit, 0.95))
}

out <- lapply(fits, describe)
names(out) <- names(fits)
# another level and a subset of the parameters, on the correlated sleepstudy model
assign("fit", lmer(Reaction ~ Days + (Days | Subject), sleepstudy), envir = globalenv())
extra <- list(level90 = intervals(fit, 0.90),
              beta_only = intervals(fit, 0.95, "beta_"),
              theta_only = intervals(fit, 0.95, "theta_"))

# the profile itself (zeta at lme4's own grid of values), on the correlated sleepstudy model
assign("fit", lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE),
       envir = globalenv())
pr <- as.data.frame(suppressWarnings(profile(fit, signames = TRUE)))
zeta_grid <- list(par = as.character(pr$.par), zeta = pr$.zeta,
                  value = sapply(seq_len(nrow(pr)), function(i) pr[i, as.character(pr$.par[i])]))

# a 3x3 unstructured term, where lme4's own fit fails its convergence check and some of its
# correlation ends are off (the tests check those ends by other means)
quad <- fit_quietly(quote(lmer(Reaction ~ Days + I(Days^2) + (Days + I(Days^2) | Subject),
                               sleepstudy)))
assign("fit", quad$fit, envir = globalenv())
quad3 <- c(intervals(fit, 0.95), list(fit_warnings = quad$warnings))

# glmer fits: profile intervals on the Laplace / quadrature deviance
sim_poisson <- read.csv("tests/reference/sim_poisson.csv.gz")
sim_binary <- read.csv("tests/reference/sim_binary.csv.gz")
glmer_ci <- function(data, formula, family, nAGQ) {
  assign("gdata", get(data), envir = globalenv())
  fit <- fit_quietly(bquote(glmer(.(formula), data = gdata, family = .(family),
                                  nAGQ = .(nAGQ))))$fit
  assign("fit", fit, envir = globalenv())
  c(list(data = data, formula = paste(deparse(formula, width.cutoff = 500), collapse = " "),
         family = family, nAGQ = nAGQ), intervals(fit, 0.95))
}
glmer_refs <- list(
  cbpp_laplace = glmer_ci("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd),
                          "binomial", 1),
  cbpp_agq9 = glmer_ci("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd),
                       "binomial", 9),
  poisson_crossed = glmer_ci("sim_poisson", count ~ x + (1 | site) + (1 | year), "poisson", 1),
  binary_slope = glmer_ci("sim_binary", y ~ t + (t | subject), "binomial", 1)
)

# parametric-bootstrap intervals (random, so the tests allow for Monte Carlo error) and the
# percentile rule of boot.ci (boot's norm.inter) on fixed vectors
set.seed(20261202)
boot_ci <- function(formula, data, type) {
  fit <- lmer(formula, data = data)
  ci <- suppressWarnings(suppressMessages(confint(fit, method = "boot", nsim = 1000,
                                                  boot.type = type)))
  list(formula = paste(deparse(formula, width.cutoff = 500), collapse = " "), type = type,
       nsim = 1000, rows = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}
boot_refs <- list(
  sleep_perc = boot_ci(Reaction ~ Days + (Days | Subject), sleepstudy, "perc"),
  dyestuff_perc = boot_ci(Yield ~ 1 + (1 | Batch), Dyestuff, "perc"),
  dyestuff_basic = boot_ci(Yield ~ 1 + (1 | Batch), Dyestuff, "basic"),
  dyestuff_norm = boot_ci(Yield ~ 1 + (1 | Batch), Dyestuff, "norm")
)
gfit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
gci <- suppressWarnings(suppressMessages(confint(gfit, method = "boot", nsim = 1000)))
boot_refs$cbpp_perc <- list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                            type = "perc", nsim = 1000, rows = rownames(gci),
                            lower = unname(gci[, 1]), upper = unname(gci[, 2]))
inter <- function(t, alpha) list(t = t, alpha = alpha,
                                 value = unname(boot:::norm.inter(t, alpha)[, 2]))
norm_inter <- list(inter((1:99)^1.5, c(0.025, 0.975)),
                   inter(sqrt(1:500), c(0.025, 0.975, 0.05, 0.95)),
                   inter(c(3, 1, 2, 5, 4), c(0.025, 0.5, 0.975)))

writeLines(toJSON(list(lme4_version = as.character(packageVersion("lme4")),
                       R_version = R.version.string, fits = out, sleep_reml_extra = extra,
                       sleep_quad3 = quad3, zeta_grid = zeta_grid, glmer = glmer_refs, boot = boot_refs, norm_inter = norm_inter),
                  digits = NA, auto_unbox = TRUE, null = "null", matrix = "rowmajor"),
           "tests/reference/lme4_profile.json")
cat("wrote tests/reference/lme4_profile.json\n")
