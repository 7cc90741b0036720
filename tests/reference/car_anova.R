# car's Anova() of lme4 fits: type II and III Wald chi-square tests (lmer and glmer fits)
# and Wald F tests with Kenward-Roger's df (REML lmer fits), the tables as printed.
# Needs R with lme4, car, pbkrtest and jsonlite (Debian: r-cran-lme4 r-cran-car
# r-cran-pbkrtest r-cran-jsonlite). Run from the repository root:
#   Rscript tests/reference/car_anova.R      (writes tests/reference/car_anova.json)
suppressPackageStartupMessages({ library(lme4); library(car); library(jsonlite) })
source("tests/reference/common.R")

# common.R's two-factor design: factors A (3 levels) and B (2), a number x, groups g
fac <- two_factor_data()

fits <- list(
  sleep = quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)),
  sleep_ml = quote(lmer(Reaction ~ Days + I(Days^2) + (Days | Subject), sleepstudy,
                        REML = FALSE)),
  factors = quote(lmer(y ~ A * B + x + (1 | g), fac)),
  factor_by_number = quote(lmer(y ~ A * x + (1 | g), fac)),
  sum_coded = quote(lmer(y ~ C(A, contr.sum) * C(B, contr.sum) + x + (1 | g), fac)),
  binomial = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                         binomial, nAGQ = 25)))

table_of <- function(a) {
  list(lines = capture.output(print(a)), rows = rownames(a),
       columns = lapply(as.list(a), function(v) ifelse(is.na(v), NA, v)))
}
describe <- function(call) {
  fit <- suppressMessages(suppressWarnings(eval(call)))
  out <- list(call = paste(deparse(call), collapse = " "),
              II = table_of(Anova(fit)), III = table_of(Anova(fit, type = 3)))
  if (isLMM(fit) && isREML(fit)) {
    out$II_F <- table_of(Anova(fit, test.statistic = "F"))
    out$III_F <- table_of(Anova(fit, type = 3, test.statistic = "F"))
  }
  out
}
out <- list(car_version = as.character(packageVersion("car")),
            lme4_version = as.character(packageVersion("lme4")),
            data = fac, fits = lapply(fits, describe))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/car_anova.json")
