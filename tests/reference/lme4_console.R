# What lme4 prints or warns at the console, for the checks of lmerpy's verbose output and
# of a response written on the right-hand side.
# Run from the repository root:   Rscript tests/reference/lme4_console.R
# Writes tests/reference/lme4_console.json
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
source("tests/reference/common.R")

# lmer(verbose = 1) and verbose = 3: each evaluation of the criterion, as nloptr prints it
verbose_lines <- function(level) {
  capture.output(fit <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy,
                             verbose = level))
}

# R's model.matrix drops the response's own term (with a warning), not the interactions
# that hold it
right <- fit_quietly(quote(lmer(Reaction ~ Days + Reaction + Days:Reaction + (1 | Subject),
                                sleepstudy)))

# print(m): lme4's short display of a fit (print.merMod)
set.seed(1)
small <- data.frame(y = round(rnorm(60), 4), g = rep(1:6, 10), x = round(rnorm(60), 4))
sleep_f <- sleepstudy
sleep_f$fDays <- factor(sleep_f$Days)
printed <- function(call, data_name) {
  fit <- suppressWarnings(suppressMessages(eval(call, globalenv())))
  list(lines = capture.output(print(fit)), data = data_name)
}
prints <- list(
  reml = printed(quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)), "sleepstudy"),
  ml = printed(quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)),
               "sleepstudy"),
  uncorr = printed(quote(lmer(Reaction ~ Days + (Days || Subject), sleepstudy)),
                   "sleepstudy"),
  factor = printed(quote(lmer(Reaction ~ fDays + (1 | Subject), sleep_f)), "sleep_f"),
  singular = printed(quote(lmer(y ~ x + (1 | g), small)), "small"),
  glmer = printed(quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                              binomial)), "cbpp"))

# anova() of two fits of one model: 0 degrees of freedom, no p-value (printed blank)
m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
m1 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)
anova_same <- capture.output(suppressMessages(print(anova(m0, m1))))
# anova(refit = FALSE): REML fits compared as they are (random effects, same fixed part)
m_slope <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
anova_reml <- capture.output(print(anova(m0, m_slope, refit = FALSE)))

ref <- list(
  lme4_version = as.character(packageVersion("lme4")), R_version = R.version.string,
  verbose = list(formula = "Reaction ~ Days + (Days | Subject)",
                 level1 = verbose_lines(1), level3 = verbose_lines(3)),
  response_on_right = list(
    formula = "Reaction ~ Days + Reaction + Days:Reaction + (1 | Subject)",
    fixef_names = names(fixef(right$fit)), fixef = unname(fixef(right$fit)),
    REMLcrit = REMLcrit(right$fit), warnings = right$warnings),
  print = prints, small = small, anova_same = anova_same, anova_reml = anova_reml)
write_json(ref, "tests/reference/lme4_console.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
