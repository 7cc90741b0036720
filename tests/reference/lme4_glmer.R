# Reference GLMM fits from real lme4 runs (glmer), for the exact GLMM engine.
# Run from the repository root:   Rscript tests/reference/lme4_glmer.R
# Writes tests/reference/lme4_glmer.json and the simulated data sets
# tests/reference/sim_poisson.csv.gz, sim_binary.csv.gz and sim_gamma.csv.gz
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
source("tests/reference/common.R")

write_gz <- function(df, path) { gz <- gzfile(path, "w"); write.csv(df, gz, row.names = FALSE); close(gz) }

# Poisson counts with two crossed random intercepts.
set.seed(20261123)
n <- 2000
site <- sample(sprintf("s%02d", 1:40), n, replace = TRUE)
year <- sample(sprintf("y%02d", 1:25), n, replace = TRUE)
x <- round(rnorm(n), 4)
bs <- rnorm(40, sd = 0.5); names(bs) <- sprintf("s%02d", 1:40)
by <- rnorm(25, sd = 0.3); names(by) <- sprintf("y%02d", 1:25)
count <- rpois(n, exp(0.4 + 0.3 * x + bs[site] + by[year]))
write_gz(data.frame(count = count, x = x, site = site, year = year),
         "tests/reference/sim_poisson.csv.gz")
sim_poisson <- read.csv("tests/reference/sim_poisson.csv.gz")

# Binary (0/1) responses with a correlated random intercept and slope.
set.seed(20261124)
ns <- 60; per <- 25
subject <- rep(sprintf("p%02d", 1:ns), each = per)
t <- round(rep(seq(-1, 1, length.out = per), ns) + rnorm(ns * per, sd = 0.05), 4)
L <- t(chol(matrix(c(1, 0.3 * 0.6, 0.3 * 0.6, 0.36), 2)))
B <- t(L %*% matrix(rnorm(2 * ns), 2)); rownames(B) <- sprintf("p%02d", 1:ns)
eta <- -0.3 + 0.9 * t + B[subject, 1] + B[subject, 2] * t
y <- rbinom(ns * per, 1, plogis(eta))
write_gz(data.frame(y = y, t = t, subject = subject), "tests/reference/sim_binary.csv.gz")
sim_binary <- read.csv("tests/reference/sim_binary.csv.gz")

# Positive, skewed responses (reaction times) for the families with a dispersion parameter,
# fitted in glmmtmb_dispersion.R (lme4 1.1's glmer does not estimate the dispersion within
# its likelihood): subjects crossed with items, a condition and a number x; rt is Gamma, ig
# inverse Gaussian (Michael, Schucany and Haas' generator: no package beyond lme4 needed).
rinvgauss_ <- function(n, mean, dispersion) {
  lambda <- 1 / dispersion
  v <- rnorm(n)^2
  x <- mean + mean^2 * v / (2 * lambda) -
    mean / (2 * lambda) * sqrt(4 * mean * lambda * v + mean^2 * v^2)
  ifelse(runif(n) <= mean / (mean + x), x, mean^2 / x)
}
set.seed(20261203)
ns <- 30; ni <- 20
g <- expand.grid(subject = sprintf("s%02d", 1:ns), item = sprintf("i%02d", 1:ni),
                 stringsAsFactors = FALSE)
g <- g[sample(nrow(g), 450), ]
cond <- ifelse(runif(450) < 0.5, "a", "b")
x <- round(runif(450, -1, 1), 3)
bs <- rnorm(ns, sd = 0.25); names(bs) <- sprintf("s%02d", 1:ns)
bsx <- rnorm(ns, sd = 0.15); names(bsx) <- sprintf("s%02d", 1:ns)
bi <- rnorm(ni, sd = 0.15); names(bi) <- sprintf("i%02d", 1:ni)
mu <- exp(6.3 + 0.12 * (cond == "b") + 0.2 * x + bs[g$subject] + bsx[g$subject] * x +
          bi[g$item])
rt <- round(rgamma(450, shape = 8, scale = mu / 8), 1)
ig <- round(rinvgauss_(450, mu / 500, 0.3), 4)
write_gz(data.frame(rt = rt, rt_s = rt / 1000, ig = ig, x = x, cond = cond,
                    subject = g$subject, item = g$item), "tests/reference/sim_gamma.csv.gz")
sim_gamma <- read.csv("tests/reference/sim_gamma.csv.gz")

fits <- list(
  cbpp_laplace = list("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd), binomial, 1),
  cbpp_agq25 = list("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd), binomial, 25),
  cbpp_probit = list("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd), binomial(link = "probit"), 1),
  cbpp_nagq0 = list("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd), binomial, 0),
  cbpp_int = list("cbpp", cbind(incidence, size - incidence) ~ 1 + (1 | herd), binomial, 1),
  poisson_crossed = list("sim_poisson", count ~ x + (1 | site) + (1 | year), poisson, 1),
  poisson_agq = list("sim_poisson", count ~ x + (1 | site), poisson, 9),
  binary_slope = list("sim_binary", y ~ t + (t | subject), binomial, 1),
  binary_cloglog = list("sim_binary", y ~ t + (1 | subject), binomial(link = "cloglog"), 1),
  cbpp_cauchit = list("cbpp", cbind(incidence, size - incidence) ~ period + (1 | herd), binomial(link = "cauchit"), 1),
  poisson_sqrt = list("sim_poisson", count ~ x + (1 | site), poisson(link = "sqrt"), 1)
)
datasets <- list(cbpp = cbpp, sim_poisson = sim_poisson, sim_binary = sim_binary,
                 sim_gamma = sim_gamma)

describe <- function(spec) {
  data <- datasets[[spec[[1]]]]
  assign(spec[[1]], data, envir = globalenv())
  fam <- spec[[3]]
  if (is.function(fam)) fam <- fam()
  assign("fam_", fam, envir = globalenv())
  call <- bquote(glmer(.(spec[[2]]), data = .(as.name(spec[[1]])), family = fam_,
                       nAGQ = .(spec[[4]])))
  quiet <- fit_quietly(call)
  fit <- quiet$fit; msgs <- quiet$messages; warns <- quiet$warnings
  vc <- as.data.frame(VarCorr(fit))
  ranefs <- describe_ranef(fit)
  s <- summary(fit)
  coefs <- coef(s)
  list(
    data = spec[[1]], formula = paste(deparse(spec[[2]], width.cutoff = 500), collapse = " "),
    family = fam$family, link = fam$link, nAGQ = spec[[4]],
    messages = msgs, warnings = warns,
    deviance = deviance(fit), dev_cmp = unname(getME(fit, "devcomp")$cmp["dev"]),
    logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
    AIC = AIC(fit), BIC = BIC(fit), df_resid = df.residual(fit), nobs = nobs(fit),
    theta = unname(getME(fit, "theta")),
    fixef = unname(fixef(fit)), fixef_names = names(fixef(fit)),
    se = unname(coefs[, "Std. Error"]), zvalue = unname(coefs[, 3]),
    pvalue = unname(coefs[, "Pr(>|z|)"]), sigma = sigma(fit),
    vcov = unname(as.matrix(vcov(fit))),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov, sdcor = vc$sdcor),
    ranef = ranefs,
    isSingular = isSingular(fit),
    fitted = unname(fitted(fit)),
    eta = unname(predict(fit, type = "link")),
    resid_deviance = unname(residuals(fit, type = "deviance")),
    resid_pearson = unname(residuals(fit, type = "pearson")),
    resid_response = unname(residuals(fit, type = "response")),
    summary = capture.output(print(s))
  )
}

out <- lapply(fits, describe)
names(out) <- names(fits)

# anova between nested glmer fits
m0 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp, binomial)
m1 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
a <- anova(m0, m1)
anova_ref <- list(rows = rownames(a), npar = a$npar, AIC = a$AIC, BIC = a$BIC,
                  logLik = a$logLik, deviance = a$deviance, Chisq = a$Chisq, Df = a$Df,
                  p = a[["Pr(>Chisq)"]], print = capture.output(print(a)))

# predictions on new data: link and response scale, a new herd, population level
nd <- data.frame(period = factor(c("1", "2", "4", "3"), levels = levels(cbpp$period)),
                 herd = c("1", "5", "15", "99"))
pred <- list(
  link = unname(predict(m1, newdata = nd, allow.new.levels = TRUE)),
  response = unname(predict(m1, newdata = nd, type = "response", allow.new.levels = TRUE)),
  pop = unname(predict(m1, newdata = nd, re.form = NA, type = "response"))
)

writeLines(toJSON(list(lme4_version = as.character(packageVersion("lme4")),
                       R_version = R.version.string, fits = out, anova = anova_ref,
                       predict = pred, predict_newdata = nd),
                  digits = NA, auto_unbox = TRUE, null = "null", matrix = "rowmajor"),
           "tests/reference/lme4_glmer.json")
cat("wrote tests/reference/lme4_glmer.json\n")
