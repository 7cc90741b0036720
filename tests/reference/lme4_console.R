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

ref <- list(
  lme4_version = as.character(packageVersion("lme4")), R_version = R.version.string,
  verbose = list(formula = "Reaction ~ Days + (Days | Subject)",
                 level1 = verbose_lines(1), level3 = verbose_lines(3)),
  response_on_right = list(
    formula = "Reaction ~ Days + Reaction + Days:Reaction + (1 | Subject)",
    fixef_names = names(fixef(right$fit)), fixef = unname(fixef(right$fit)),
    REMLcrit = REMLcrit(right$fit), warnings = right$warnings))
write_json(ref, "tests/reference/lme4_console.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
