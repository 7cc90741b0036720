# lme4's rePCA(): the principal components of each grouping factor's relative covariance
# factor, printed and summarised, for the checks of lmerpy's rePCA().
# Run from the repository root:   Rscript tests/reference/lme4_repca.R
# Writes tests/reference/lme4_repca.json
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
source("tests/reference/common.R")

cases <- list(
  slopes = list(formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy"),
  uncorrelated = list(formula = "Reaction ~ Days + (Days || Subject)", data = "sleepstudy"),
  split = list(formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
               data = "sleepstudy"),
  quadratic = list(formula = "Reaction ~ Days + (Days + I(Days^2) | Subject)",
                   data = "sleepstudy"),
  crossed = list(formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", data = "Penicillin"),
  glmer = list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
               data = "cbpp", family = "binomial"))

out <- lapply(cases, function(case) {
  call <- if (is.null(case$family)) {
    bquote(lmer(.(as.formula(case$formula)), data = .(as.name(case$data))))
  } else {
    bquote(glmer(.(as.formula(case$formula)), data = .(as.name(case$data)),
                 family = .(case$family)))
  }
  fit <- fit_quietly(call)$fit
  p <- rePCA(fit)
  s <- summary(p)
  groups <- lapply(names(p), function(g) {
    list(group = g, sdev = p[[g]]$sdev, rotation = unname(p[[g]]$rotation),
         importance = unname(s[[g]]$importance))
  })
  list(formula = case$formula, data = case$data, family = case$family,
       theta = unname(getME(fit, "theta")), groups = groups,
       printed = capture.output(print(p)), summary = capture.output(print(s)))
})
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
           "tests/reference/lme4_repca.json")
