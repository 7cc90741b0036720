# lmerTest's Satterthwaite t-tests of the fixed effects: summary(m) of an lmerModLmerTest fit
# (degrees of freedom, p-values, the printed table), and the asymptotic covariance of the
# variance parameters (θ, σ) it derives them from.
# Needs R with lme4, lmerTest and jsonlite (Debian: r-cran-lme4 r-cran-lmertest r-cran-jsonlite).
# Run from the repository root:   Rscript tests/reference/lmertest.R
# Writes tests/reference/lmertest.json
suppressPackageStartupMessages({ library(lmerTest); library(jsonlite) })
source("tests/reference/common.R")

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
# anova(m): lmerTest's type III and type I F-tests (Satterthwaite's denominator df), and
# lme4's own single-model table; on factors with treatment contrasts, numbers, a logical
fac <- two_factor_data()
fac$L <- fac$x > 0
fac$O <- factor(fac$A, ordered = TRUE)  # contr.poly
fac$h <- factor(rep(1:8, 18))  # a grouping factor without an effect (step() removes it)
table_of <- function(a) {
  list(lines = capture.output(print(a)), rows = rownames(a),
       columns = lapply(as.list(a), function(v) ifelse(is.na(v), NA, v)))
}
anova_fits <- list(
  factors = quote(lmer(y ~ A * B + x + (1 | g), fac)),
  factor_by_number = quote(lmer(y ~ A * x + (1 | g), fac)),
  logical = quote(lmer(y ~ L + A + (1 | g), fac)),
  sleep_quad = quote(lmer(Reaction ~ Days + I(Days^2) + (Days | Subject), sleepstudy)),
  sleep = quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)),
  # other codings: lmerTest builds the type III contrasts on X recoded by contr.treatment
  ordered = quote(lmer(y ~ O * B + x + (1 | g), fac)),
  sum_coded = quote(lmer(y ~ C(A, contr.sum) * x + (1 | g), fac)))
anovas <- lapply(anova_fits, function(call) {
  fit <- eval(call)
  list(formula = paste(deparse(formula(fit)), collapse = " "),
       type3 = table_of(anova(fit)), type1 = table_of(anova(fit, type = 1)),
       lme4 = table_of(lme4:::anova.merMod(fit)),
       type3_kr = table_of(anova(fit, ddf = "Kenward-Roger")),
       type1_kr = table_of(anova(fit, type = 1, ddf = "Kenward-Roger")),
       drop1 = table_of(drop1(fit)),
       drop1_kr = table_of(drop1(fit, ddf = "Kenward-Roger")))
})

# lme4's anova() of one glmer fit (σ = 1: F = the mean square)
glmer_anova <- table_of(anova(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                    cbpp, binomial)))

# summary(m, ddf = "Kenward-Roger"): pbkrtest's adjusted covariance and df (REML fits)
kr_fits <- list(
  sleep_reml = quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)),
  sleep_quad = quote(lmer(Reaction ~ Days + I(Days^2) + (1 | Subject), sleepstudy)),
  penicillin = quote(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)),
  pastes = quote(lmer(strength ~ 1 + (1 | batch / cask), Pastes)))
kenward_roger <- lapply(kr_fits, function(call) {
  fit <- eval(call)
  s <- summary(fit, ddf = "Kenward-Roger")
  cf <- coef(s)
  list(se = unname(cf[, "Std. Error"]), df = unname(cf[, "df"]),
       t = unname(cf[, "t value"]), p = unname(cf[, "Pr(>|t|)"]),
       summary = capture.output(print(s)))
})

# contest(m, L): joint F-tests and row-wise t-tests with confidence intervals
quad <- lmer(Reaction ~ Days + I(Days^2) + (Days | Subject), sleepstudy)
L2 <- rbind(c(0, 1, 0), c(0, 0, 1))
as_cols <- function(d) lapply(as.list(d), function(v) unname(v))
contests <- list(
  L = L2, day5 = c(1, 5, 25),
  joint = as_cols(contest(quad, L2)), rows = as_cols(contest(quad, L2, joint = FALSE)),
  joint_kr = as_cols(contest(quad, L2, ddf = "Kenward-Roger")),
  rows_kr = as_cols(contest(quad, L2, joint = FALSE, ddf = "Kenward-Roger")),
  day5_rows = as_cols(contest(quad, c(1, 5, 25), joint = FALSE)))

# ls_means(m): least-squares means of the factor terms, and pairwise differences
lsm_fit <- lmer(y ~ A * B + x + (1 | g), fac)
lsm_quad <- lmer(y ~ A * x + I(x^2) + (1 | g), fac)
lsm_table <- function(x) c(list(rows = rownames(x), lines = capture.output(print(x))),
                           as_cols(x[, c("Estimate", "Std. Error", "df", "t value",
                                         "lower", "upper", "Pr(>|t|)")]))
ls_means_out <- list(
  all = lsm_table(ls_means(lsm_fit)),
  pairwise_A = lsm_table(ls_means(lsm_fit, which = "A", pairwise = TRUE)),
  kr = lsm_table(ls_means(lsm_fit, ddf = "Kenward-Roger")),
  transformed = lsm_table(suppressWarnings(ls_means(lsm_quad))))

# step(m): backward elimination of random, then fixed terms
stepped <- suppressMessages(suppressWarnings(
  step(lmer(y ~ A * B + x + (1 | g) + (1 | h), fac))))
step_out <- list(lines = capture.output(print(stepped)),
                 formula = paste(deparse(formula(get_model(stepped))), collapse = " "))

# ranova(m): likelihood-ratio tests of the random-effect terms (a term reduced or removed;
# the last one removed leaves lm())
ranova_fits <- list(
  slope = quote(ranova(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))),
  slope_whole = quote(ranova(lmer(Reaction ~ Days + (Days | Subject), sleepstudy),
                             reduce.terms = FALSE)),
  uncorrelated = quote(ranova(lmer(Reaction ~ Days + (Days || Subject), sleepstudy))),
  to_lm_ml = quote(ranova(lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE))),
  crossed = quote(ranova(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin))),
  weighted = quote(ranova(lmer(Reaction ~ Days + (1 | Subject), sleep_w, weights = w))),
  quadratic = quote(ranova(lmer(Reaction ~ Days + (1 + Days + I(Days^2) | Subject),
                                sleepstudy))))
ranovas <- lapply(ranova_fits, function(call) table_of(suppressWarnings(eval(call))))

out <- list(lmerTest_version = as.character(packageVersion("lmerTest")),
            lme4_version = as.character(packageVersion("lme4")),
            fits = lapply(fits, describe),
            anova_data = fac, anovas = anovas, ranovas = ranovas,
            kenward_roger = kenward_roger, step = step_out, contests = contests,
            glmer_anova = glmer_anova, ls_means = ls_means_out,
            contrast = list(L = c(1, 5), estimate = day5$Estimate, se = day5[["Std. Error"]],
                            df = day5$df, t = day5[["t value"]], p = day5[["Pr(>|t|)"]]))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/lmertest.json")
