# broom.mixed's tidy(), glance() and augment() of lme4 fits, for lmerpy's tidy/glance/augment.
# Run from the repository root:   Rscript tests/reference/broom_mixed.R
# Writes tests/reference/broom_mixed.json
suppressPackageStartupMessages({ library(lme4); library(broom.mixed); library(jsonlite) })

frame <- function(d) {
  d <- as.data.frame(d)
  lapply(d, function(col) if (is.factor(col)) as.character(col) else col)
}
sleep_w <- sleepstudy
sleep_w$w <- rep(c(1, 2, 0.5), length.out = nrow(sleep_w))

m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
pen <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
mw <- lmer(Reaction ~ Days + (1 | Subject), sleep_w, weights = w)
g <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
aug <- function(fit, cols) frame(augment(fit))[cols]
lmm_cols <- c(".fitted", ".resid", ".hat", ".cooksd", ".fixed", ".mu", ".offset", ".sqrtXwt",
              ".sqrtrwt", ".weights", ".wtres")
out <- list(
  sleep = list(
    tidy = frame(tidy(m)),
    tidy_wald = frame(tidy(m, conf.int = TRUE, conf.level = 0.9)),
    tidy_profile = frame(tidy(m, conf.int = TRUE, conf.method = "profile")),
    tidy_vcov = frame(tidy(m, scales = c("vcov", NA))),
    ran_vals = frame(tidy(m, effects = "ran_vals", conf.int = TRUE)),
    ran_coefs = frame(tidy(m, effects = "ran_coefs")),
    glance = frame(glance(m)),
    glance_ml = frame(glance(update(m, REML = FALSE))),
    augment = aug(m, lmm_cols)),
  penicillin = list(tidy = frame(tidy(pen)), ran_vals = frame(tidy(pen, effects = "ran_vals"))),
  weighted = list(augment = aug(mw, lmm_cols), glance = frame(glance(mw))),
  cbpp = list(
    tidy = frame(tidy(g)),
    tidy_exp = frame(tidy(g, conf.int = TRUE, exponentiate = TRUE)),
    glance = frame(glance(g)),
    augment = aug(g, c(".fitted", ".resid", ".fixed", ".mu", ".offset", ".sqrtXwt", ".sqrtrwt",
                       ".weights", ".wtres", ".eta")))
)
# GLMM hat values at a singular fit (θ = 0) are the glm's: R's hatvalues(glm), for lmerpy's
# working-weight hat matrix (lme4's hatvalues mixes √prior weights with PIRLS's factor)
set.seed(31)
flat <- data.frame(g = factor(rep(1:8, each = 15)), x = round(rnorm(120), 3))
flat$y <- rbinom(120, 1, plogis(-0.3 + 0.8 * flat$x))
gs <- glmer(y ~ x + (1 | g), flat, binomial)
stopifnot(isSingular(gs))
out$singular_glmm <- list(data = frame(flat), theta = unname(getME(gs, "theta")),
                          glm_hat = unname(hatvalues(glm(y ~ x, binomial, flat))))
suppressPackageStartupMessages(library(lmerTest))
mt <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
out$sleep$tidy_lmertest <- frame(tidy(mt))
out$broom_mixed_version <- as.character(packageVersion("broom.mixed"))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           "tests/reference/broom_mixed.json")
