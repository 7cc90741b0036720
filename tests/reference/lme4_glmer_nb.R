# lme4's glmer.nb(): negative binomial GLMMs with their θ estimated, on counts simulated
# here (written into the JSON with the fits).
# Run from the repository root:   Rscript tests/reference/lme4_glmer_nb.R
# Writes tests/reference/lme4_glmer_nb.json
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

set.seed(5)
n <- 240
counts <- data.frame(g = factor(rep(1:20, each = 12)), x = round(rnorm(n), 3))
counts$y <- rnbinom(n, mu = exp(0.5 + 0.4 * counts$x + rnorm(20, sd = 0.6)[counts$g]),
                    size = 2)
describe <- function(fit) {
  list(formula = paste(deparse(formula(fit)), collapse = " "),
       nb_theta = getME(fit, "glmer.nb.theta"), theta = unname(getME(fit, "theta")),
       fixef = as.list(fixef(fit)), logLik = as.numeric(logLik(fit)),
       df = attr(logLik(fit), "df"), AIC = AIC(fit),
       fitted = unname(fitted(fit)), summary = capture.output(print(summary(fit))))
}
fits <- list(slope = describe(glmer.nb(y ~ x + (1 | g), counts)),
             intercept = describe(glmer.nb(y ~ 1 + (1 | g), counts)))
out <- list(lme4_version = as.character(packageVersion("lme4")), data = counts, fits = fits)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/lme4_glmer_nb.json")
