# emmeans' estimated marginal means and their contrasts for lme4 fits: the printed tables
# and their numbers, with the default Kenward-Roger df (pbkrtest), Satterthwaite's
# (lmerTest) and asymptotic ones, p-value and confidence-level adjustments, and GLMMs on
# the link and response scales.
# Needs R with lme4, lmerTest, pbkrtest, emmeans and jsonlite
# (Debian: r-cran-lme4 r-cran-lmertest r-cran-emmeans r-cran-jsonlite).
# Run from the repository root:   Rscript tests/reference/emmeans.R
# Writes tests/reference/emmeans.json
suppressPackageStartupMessages({ library(lme4); library(emmeans); library(jsonlite) })
source("tests/reference/common.R")

# common.R's two-factor design: factors A (3 levels) and B (2), a number x, groups g
fac <- two_factor_data()
fac$N <- factor(rep(c(10, 20, 40), each = 48))  # levels that read as numbers

f1 <- lmer(y ~ A * B + x + (1 | g), fac)
# an unbalanced subset (cells of 8 to 24 rows) for emmeans' weights
unbalanced <- !(fac$A == "a1" & fac$B == "b2" & as.integer(fac$g) <= 8) &
  !(fac$B == "b1" & as.integer(fac$g) > 9)
fu <- lmer(y ~ A * B + x + (1 | g), fac[unbalanced, ])
# an empty cell (a1, b2): lme4 drops the aliased A:B column; emmeans marks what is not
# estimable
fe <- suppressMessages(lmer(y ~ A * B + x + (1 | g), fac[!(fac$A == "a1" & fac$B == "b2"), ]))
f1ml <- lmer(y ~ A * B + x + (1 | g), fac, REML = FALSE)
fq <- lmer(y ~ A * x + I(x^2) + (1 | g), fac)
fx <- lmer(y ~ A * x + B + (1 | g), fac)
fn <- lmer(y ~ N + B + (1 | g), fac)
sl <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
gb <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = 25)
gp <- glmer(incidence ~ period + (1 | herd), cbpp, poisson, nAGQ = 25)
go <- glmer(incidence ~ period + offset(log(size)) + (1 | herd), cbpp, poisson, nAGQ = 25)

# transformed responses: emmeans back-transforms means, and differences of logarithms
sleep_half <- transform(sleepstudy, half = factor(ifelse(Days > 4, "late", "early")))
transformed <- lapply(c(log = "log(Reaction)", log10 = "log10(Reaction)",
                        log2 = "log2(Reaction)", log_plus = "log(Reaction + 1)",
                        log1p = "log1p(Reaction)", sqrt = "sqrt(Reaction)"),
                      function(lhs) lmer(as.formula(paste(lhs, "~ half + (1 | Subject)")),
                                         sleep_half))

quiet <- function(expr) suppressMessages(suppressWarnings(expr))
cases <- list(
  A = quote(emmeans(f1, ~ A)),
  A_by_B = quote(emmeans(f1, ~ A | B)),
  AB = quote(emmeans(f1, ~ A * B)),
  B_by_A = quote(emmeans(f1, "B", by = "A")),
  A_satt = quote(emmeans(f1, ~ A, lmer.df = "satterthwaite")),
  A_asym = quote(emmeans(f1, ~ A, lmer.df = "asymptotic")),
  A_ml = quote(emmeans(f1ml, ~ A)),
  A_at_x = quote(emmeans(f1, ~ A, at = list(x = 1))),
  A_level90 = quote(confint(emmeans(f1, ~ A), level = 0.9)),
  x_only = quote(emmeans(f1, ~ x)),
  quad = quote(emmeans(fq, ~ A)),
  days_at = quote(emmeans(sl, ~ Days, at = list(Days = c(0, 5)))),
  pairs_A = quote(pairs(emmeans(f1, ~ A))),
  pairs_A_by_B = quote(pairs(emmeans(f1, ~ A | B))),
  pairs_AB = quote(pairs(emmeans(f1, ~ A * B))),
  pairs_reverse = quote(pairs(emmeans(f1, ~ A), reverse = TRUE)),
  pairs_satt = quote(pairs(emmeans(f1, ~ A, lmer.df = "satterthwaite"))),
  pairs_none = quote(pairs(emmeans(f1, ~ A), adjust = "none")),
  pairs_bonferroni = quote(pairs(emmeans(f1, ~ A), adjust = "bonferroni")),
  pairs_holm = quote(pairs(emmeans(f1, ~ A), adjust = "holm")),
  pairs_sidak = quote(pairs(emmeans(f1, ~ A), adjust = "sidak")),
  pairs_scheffe = quote(pairs(emmeans(f1, ~ A), adjust = "scheffe")),
  pairs_fdr = quote(pairs(emmeans(f1, ~ A), adjust = "fdr")),
  pairs_confint = quote(confint(pairs(emmeans(f1, ~ A)))),
  pairs_infer = quote(summary(pairs(emmeans(f1, ~ A)), infer = TRUE)),
  pairs_numeric_levels = quote(pairs(emmeans(fn, ~ N))),
  revpairwise = quote(contrast(emmeans(f1, ~ A), "revpairwise")),
  trt_vs_ctrl = quote(contrast(emmeans(f1, ~ A), "trt.vs.ctrl")),
  trt_vs_ctrl_ref2 = quote(contrast(emmeans(f1, ~ A), "trt.vs.ctrl", ref = 2)),
  trt_vs_ctrl_confint = quote(confint(contrast(emmeans(f1, ~ A), "trt.vs.ctrl"))),
  poly = quote(contrast(emmeans(fn, ~ N), "poly")),
  eff = quote(contrast(emmeans(f1, ~ A), "eff")),
  eff_by_B = quote(contrast(emmeans(f1, ~ A | B), "eff")),
  binomial_link = quote(emmeans(gb, ~ period)),
  binomial_response = quote(emmeans(gb, ~ period, type = "response")),
  binomial_pairs = quote(pairs(emmeans(gb, ~ period))),
  binomial_pairs_response = quote(pairs(emmeans(gb, ~ period), type = "response")),
  binomial_trt_response = quote(contrast(emmeans(gb, ~ period), "trt.vs.ctrl",
                                         type = "response")),
  binomial_pairs_response_confint = quote(confint(pairs(emmeans(gb, ~ period),
                                                        type = "response"))),
  poisson_response = quote(emmeans(gp, ~ period, type = "response")),
  poisson_pairs_response = quote(pairs(emmeans(gp, ~ period), type = "response")),
  poisson_pairs = quote(pairs(emmeans(gp, ~ period))),
  binomial_pairs_response_infer = quote(summary(pairs(emmeans(gb, ~ period),
                                                      type = "response"), infer = TRUE)),
  overall = quote(emmeans(fx, ~ 1)),
  overall_sleep = quote(emmeans(sl, ~ 1)),
  # emtrends: slopes in x by level, by a forward difference (exact for a linear x; for
  # I(x^2) the slope at the mean plus the difference's step)
  trends = quote(emtrends(fx, ~ A, var = "x")),
  trends_by_B = quote(emtrends(fx, ~ A | B, var = "x")),
  trends_pairs = quote(pairs(emtrends(fx, ~ A, var = "x"))),
  trends_quad = quote(emtrends(fq, ~ A, var = "x")),
  trends_quad_at = quote(emtrends(fq, ~ A, var = "x", at = list(x = c(0, 1)))),
  trends_overall = quote(emtrends(sl, ~ 1, var = "Days")),
  # an offset enters at its variable's mean, log(mean(size)); offset = 0: rates per animal
  offset_link = quote(emmeans(go, ~ period)),
  offset_response = quote(emmeans(go, ~ period, type = "response")),
  offset_zero = quote(emmeans(go, ~ period, offset = 0, type = "response")),
  offset_pairs = quote(pairs(emmeans(go, ~ period), type = "response")),
  # weights for averaging over B in the unbalanced fit
  weights_equal = quote(emmeans(fu, ~ A)),
  weights_proportional = quote(emmeans(fu, ~ A, weights = "proportional")),
  weights_outer = quote(emmeans(fu, ~ A, weights = "outer")),
  weights_cells = quote(emmeans(fu, ~ A, weights = "cells")),
  weights_flat = quote(emmeans(fu, ~ A, weights = "flat")),
  weights_cells_B = quote(emmeans(fu, ~ B, weights = "cells")),
  weights_cells_pairs = quote(pairs(emmeans(fu, ~ A, weights = "cells"))),
  log_link = quote(emmeans(transformed$log, ~ half)),
  log_pairs_link = quote(pairs(emmeans(transformed$log, ~ half))),
  log_response = quote(emmeans(transformed$log, ~ half, type = "response")),
  log_pairs = quote(pairs(emmeans(transformed$log, ~ half), type = "response")),
  log10_pairs_confint = quote(confint(pairs(emmeans(transformed$log10, ~ half),
                                            type = "response"))),
  log2_response = quote(emmeans(transformed$log2, ~ half, type = "response")),
  log_plus_response = quote(emmeans(transformed$log_plus, ~ half, type = "response")),
  log_plus_pairs = quote(pairs(emmeans(transformed$log_plus, ~ half), type = "response")),
  log1p_pairs = quote(pairs(emmeans(transformed$log1p, ~ half), type = "response")),
  sqrt_response = quote(emmeans(transformed$sqrt, ~ half, type = "response")),
  sqrt_pairs_confint = quote(confint(pairs(emmeans(transformed$sqrt, ~ half),
                                           type = "response"))),
  # factor(Days): the grid holds the numeric Days at each of its values
  factor_of_number = quote(emmeans(lmer(Reaction ~ factor(Days) + (1 | Subject),
                                        sleepstudy), ~ Days)),
  factor_of_number_poly = quote(contrast(emmeans(lmer(Reaction ~ factor(Days) +
                                                        (1 | Subject), sleepstudy),
                                                 ~ Days), "poly")),
  empty_cell = quote(emmeans(fe, ~ A * B)),
  empty_cell_A = quote(emmeans(fe, ~ A)),
  empty_cell_by = quote(emmeans(fe, ~ B | A)),
  empty_cell_pairs = quote(pairs(emmeans(fe, ~ A * B))),
  empty_cell_pairs_by = quote(pairs(emmeans(fe, ~ B | A))),
  empty_cell_holm = quote(pairs(emmeans(fe, ~ A * B), adjust = "holm")),
  empty_cell_fdr = quote(pairs(emmeans(fe, ~ A * B), adjust = "fdr")),
  empty_cell_confint = quote(confint(pairs(emmeans(fe, ~ A * B)))),
  # interaction contrasts: products of each variable's contrasts
  interaction_pairwise = quote(contrast(emmeans(f1, ~ A * B), interaction = "pairwise")),
  interaction_mixed = quote(contrast(emmeans(f1, ~ A * B),
                                     interaction = c("consec", "pairwise"))),
  interaction_trt = quote(contrast(emmeans(f1, ~ A * B), interaction = "trt.vs.ctrl")),
  interaction_by = quote(contrast(emmeans(f1, ~ A | B), interaction = "pairwise")))

# the multivariate t adjustment ("mvt", consec's default): mvtnorm integrates by
# randomised quasi-Monte Carlo to an absolute error of 1e-3, so the numbers are compared,
# not the printed lines; each case from the same seed
mvt <- list(
  consec = quote(contrast(emmeans(f1, ~ A), "consec")),
  consec_by = quote(contrast(emmeans(f1, ~ B | A), "consec")),
  pairs = quote(pairs(emmeans(f1, ~ A * B), adjust = "mvt")),
  trt_confint = quote(confint(contrast(emmeans(f1, ~ A | B), "trt.vs.ctrl",
                                       adjust = "mvt"))),
  pairs_glmm = quote(summary(pairs(emmeans(gb, ~ period), adjust = "mvt"), infer = TRUE)))

# joint_tests(): an F test per model term on the means (numbers at mean ± 1)
joint <- list(
  two_factors = quote(joint_tests(f1)),
  factor_by_number = quote(joint_tests(fx)),
  by_B = quote(joint_tests(f1, by = "B")),
  satterthwaite = quote(joint_tests(f1, lmer.df = "satterthwaite")),
  binomial = quote(joint_tests(gb)))

describe <- function(call) {
  obj <- quiet(eval(call))
  s <- if (inherits(obj, "summary_emm")) obj else summary(obj)
  d <- as.data.frame(s)
  list(call = paste(deparse(call), collapse = " "), lines = capture.output(print(s)),
       columns = lapply(as.list(d), function(v) if (is.factor(v)) as.character(v) else v))
}
# R's ptukey and qtukey (Tukey's adjustment, and emmeans' dunnettx through them)
tukey_q <- c(0.5, 1, 2.5, 3.1, 4.2, 6, 9)
tukey <- lapply(list(c(2, 5), c(3, 17), c(6, 126), c(6, 900), c(4, 7000), c(5, 30000),
                     c(3, Inf), c((1 + sqrt(1 + 8 * 3)) / 2, 40)),
                function(a) list(nmeans = a[1], df = a[2], p = ptukey(tukey_q, a[1], a[2]),
                                 q95 = qtukey(0.95, a[1], a[2])))

# R's p.adjust, which emmeans applies for the stepwise methods
p <- c(0.01, 0.04, 0.03, 0.005, 0.2, 0.04)
p_adjust <- lapply(setNames(nm = c("holm", "hochberg", "BH", "BY", "bonferroni")),
                   function(method) p.adjust(p, method))

out <- list(emmeans_version = as.character(packageVersion("emmeans")),
            lme4_version = as.character(packageVersion("lme4")),
            data = fac, unbalanced = unbalanced, cases = lapply(cases, describe),
            mvt = lapply(mvt, function(call) { set.seed(1); describe(call) }),
            joint_tests = lapply(joint, describe),
            p = p, p_adjust = p_adjust, tukey_q = tukey_q, tukey = tukey)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/emmeans.json")
