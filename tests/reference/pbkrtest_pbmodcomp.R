# pbkrtest's PBmodcomp(): parametric bootstrap likelihood-ratio tests of nested models, with
# the bootstrap statistics themselves (so that lmerpy's tests of a given sample can be
# checked exactly, and its own samples compared in distribution).
# Run from the repository root:   Rscript tests/reference/pbkrtest_pbmodcomp.R
# Writes tests/reference/pbkrtest_pbmodcomp.json
suppressPackageStartupMessages({ library(lme4); library(pbkrtest); library(jsonlite) })
source("tests/reference/common.R")

fac <- two_factor_data()
cases <- list(
  slopes = list(data = "sleepstudy", large = "Reaction ~ Days + (Days | Subject)",
                small = "Reaction ~ Days + (1 | Subject)", nsim = 1000),
  fixed = list(data = "fac", large = "y ~ A * x + B + (1 | g)", small = "y ~ A * x + (1 | g)",
               nsim = 1000),
  glmm = list(data = "cbpp", large = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
              small = "cbind(incidence, size - incidence) ~ 1 + (1 | herd)", nsim = 200,
              family = "binomial")
)
frames <- list(sleepstudy = sleepstudy, fac = fac, cbpp = cbpp)
out <- lapply(cases, function(spec) {
  d <- frames[[spec$data]]
  if (is.null(spec$family)) {
    large <- lmer(as.formula(spec$large), d)
    small <- lmer(as.formula(spec$small), d)
  } else {
    large <- glmer(as.formula(spec$large), d, family = spec$family)
    small <- glmer(as.formula(spec$small), d, family = spec$family)
  }
  pb <- suppressWarnings(suppressMessages(PBmodcomp(large, small, nsim = spec$nsim, seed = 1)))
  s <- summary(pb)
  c(spec, list(tobs = unname(pb$LRTstat["tobs"]), df = unname(pb$LRTstat["df"]),
               ref = as.numeric(pb$ref),
               test = list(rows = rownames(s$test), stat = s$test$stat, df = s$test$df,
                           ddf = s$test$ddf, p = s$test$p.value),
               printed = capture.output(print(s))))
})
out$data_fac <- fac
out$pbkrtest_version <- as.character(packageVersion("pbkrtest"))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE, na = "null"),
           "tests/reference/pbkrtest_pbmodcomp.json")
