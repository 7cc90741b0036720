# Kenward-Roger for a weighted lmer fit. pbkrtest (which lmerTest and emmeans call) builds
# Σ = Σ γ_i G_i + σ²I and so ignores prior weights: its df and adjusted covariance for a
# weighted fit are those of an unweighted model at the weighted fit's estimates. With
# weights, Σ = ZGZ' + σ²W⁻¹; multiplying y, X and Z by √w gives a model with the same
# estimates whose Σ is √W Σ √W, and Kenward-Roger's quantities are invariant to that, so
# pbkrtest on the transformed model is Kenward-Roger for the weighted one (as mmrm computes
# it). This script writes both: the reference (transformed) and what pbkrtest gives the
# weighted fit itself.
# Run from the repository root:   Rscript tests/reference/pbkrtest_weights.R
# Writes tests/reference/pbkrtest_weights.json
suppressPackageStartupMessages({ library(lmerTest); library(pbkrtest); library(jsonlite) })
source("tests/reference/common.R")

kr_table <- function(fit) {
  cf <- coef(summary(fit, ddf = "Kenward-Roger"))
  list(estimate = unname(cf[, "Estimate"]), se = unname(cf[, "Std. Error"]),
       df = unname(cf[, "df"]), t = unname(cf[, "t value"]), p = unname(cf[, "Pr(>|t|)"]),
       vcov_adjusted = unname(as.matrix(vcovAdj(fit))))
}

# sleepstudy with lme4_fits.R's weights, correlated slopes
sleep_w <- sleepstudy
sleep_w$w <- rep(c(1, 2, 0.5), length.out = nrow(sleep_w))
weighted <- lmer(Reaction ~ Days + (Days | Subject), sleep_w, weights = w)
d <- sleep_w
d$sw <- sqrt(d$w); d$yt <- d$Reaction * d$sw; d$swDays <- d$sw * d$Days
folded <- lmer(yt ~ 0 + sw + swDays + (0 + sw + swDays | Subject), d)
sleep <- list(formula = "Reaction ~ Days + (Days | Subject)", weights = sleep_w$w,
              names = names(fixef(weighted)), theta = unname(getME(weighted, "theta")),
              theta_folded = unname(getME(folded, "theta")),
              kenward_roger = kr_table(folded), pbkrtest_on_weighted = kr_table(weighted))

# two factors and a number, random intercepts, uneven weights; a joint F-test of A's terms
fac <- two_factor_data()
set.seed(11)
fac$w <- round(runif(nrow(fac), 0.3, 3), 2)
weighted2 <- lmer(y ~ A * x + B + (1 | g), fac, weights = w)
X <- model.matrix(~ A * x + B, fac)
f2 <- data.frame(yt = fac$y * sqrt(fac$w), sw = sqrt(fac$w), g = fac$g)
f2$Xt <- X * sqrt(fac$w)
folded2 <- lmer(yt ~ 0 + Xt + (0 + sw | g), f2)
L <- matrix(0, 2, ncol(X)); L[1, 2] <- 1; L[2, 3] <- 1          # A2 = A3 = 0
joint <- contest(folded2, L, ddf = "Kenward-Roger")
factors <- list(formula = "y ~ A * x + B + (1 | g)", data = fac,
                names = names(fixef(weighted2)), theta = unname(getME(weighted2, "theta")),
                theta_folded = unname(getME(folded2, "theta")),
                kenward_roger = kr_table(folded2), pbkrtest_on_weighted = kr_table(weighted2),
                L = L, joint = list(F = joint[["F value"]], NumDF = joint[["NumDF"]],
                                    DenDF = joint[["DenDF"]], p = joint[["Pr(>F)"]]))

out <- list(lme4_version = as.character(packageVersion("lme4")),
            pbkrtest_version = as.character(packageVersion("pbkrtest")),
            fits = list(sleep = sleep, factors = factors))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/pbkrtest_weights.json")
cat("wrote tests/reference/pbkrtest_weights.json\n")
