# lmer/glmer(..., contrasts = list(...)): R's coding of the fixed effects' factors, the
# estimates and names it gives, and car's type III tests, which need sum-to-zero coding.
# Run from the repository root:   Rscript tests/reference/lme4_contrasts.R
# Writes tests/reference/lme4_contrasts.json
suppressPackageStartupMessages({ library(lme4); library(car); library(jsonlite) })
source("tests/reference/common.R")

fac <- two_factor_data()
describe <- function(fit) {
  a3 <- Anova(fit, type = 3)
  list(fixef_names = names(fixef(fit)), fixef = unname(fixef(fit)),
       se = unname(sqrt(diag(as.matrix(vcov(fit))))), logLik = as.numeric(logLik(fit)),
       anova3 = list(terms = rownames(a3), chisq = a3$Chisq, df = a3$Df,
                     p = a3[["Pr(>Chisq)"]]))
}
sum_helmert <- lmer(y ~ A * x + B + (1 | g), fac,
                    contrasts = list(A = "contr.sum", B = "contr.helmert"))
treatment <- lmer(y ~ A * x + B + (1 | g), fac)
cb <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
            contrasts = list(period = "contr.sum"))
# a new row predicted through the sum coding
nd <- data.frame(A = c("a1", "a3"), B = c("b2", "b1"), x = c(0.5, -1), g = c("1", "new"))
out <- list(data = fac,
            sum_helmert = c(describe(sum_helmert), list(
              predict = unname(predict(sum_helmert, nd, allow.new.levels = TRUE)))),
            treatment = describe(treatment),
            cbpp_sum = describe(cb),
            newdata = nd)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/lme4_contrasts.json")
