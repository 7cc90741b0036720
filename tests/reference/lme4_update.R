# R's update(): formulas written against a fitted model's own ('.' = the old side), and
# lme4 models updated with a new formula, REML, data, weights or nAGQ; drop1(), which
# refits the model without each term in turn.
# Run from the repository root:   Rscript tests/reference/lme4_update.R
# Writes tests/reference/lme4_update.json
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

text_of <- function(f) paste(deparse(f, width.cutoff = 500L), collapse = " ")

# update.formula on text: the simplified formula R writes
formula_cases <- list(
  c("Reaction ~ Days + (Days | Subject)", ". ~ . - Days"),
  c("Reaction ~ Days + (Days | Subject)", ". ~ . + I(Days^2)"),
  c("Reaction ~ Days + (Days | Subject)", ". ~ . - (Days | Subject) + (1 | Subject)"),
  c("Reaction ~ Days + (Days|Subject)", ". ~ . - (Days | Subject)"),
  c("y ~ x*z + (1|g)", ". ~ . + w"),
  c("y ~ x*z + (1 | g)", ". ~ . - x:z"),
  c("y ~ x + offset(o) + (1|g)", ". ~ . + z"),
  c("y ~ x + (1|g)", ". ~ . - 1"),
  c("y ~ x", ". ~ . - x"),
  c("y ~ x + (1|g)", ". ~ . - x - 1"),
  c("y ~ x + (1|g)", "~ . + (0 + x|g)"),
  c("y ~ x + (x||g)", ". ~ . - x"),
  c("y ~ 0 + x + (1|g)", ". ~ . + 1"),
  c("y ~ x + (1|g)", "log(y) ~ ."),
  c("y ~ x + (1 | g) + (1 | g)", ". ~ . + z"),
  c("y ~ a/b + (1 | g)", ". ~ . - a:b"),
  c("y ~ (a + b + c)^2 + (1 | g)", ". ~ . - b:c"))
formulas <- lapply(formula_cases, function(cs) {
  list(old = cs[[1]], new = cs[[2]],
       updated = text_of(update(as.formula(cs[[1]]), as.formula(cs[[2]]))))
})

summarise <- function(fit) {
  list(formula = text_of(formula(fit)), REML = isREML(fit),
       criterion = if (isREML(fit)) unname(REMLcrit(fit)) else unname(deviance(fit)),
       fixef = as.list(fixef(fit)), theta = unname(getME(fit, "theta")),
       nobs = nobs(fit))
}

m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
sleep_w <- sleepstudy
sleep_w$w <- rep(c(1, 2, 0.5), length.out = nrow(sleep_w))
mw <- lmer(Reaction ~ Days + (Days | Subject), sleep_w, weights = w)
short <- sleepstudy[sleepstudy$Days < 8, ]
g <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial)
models <- list(
  drop_days = summarise(update(m, . ~ . - Days)),
  quadratic = summarise(update(m, . ~ . + I(Days^2))),
  intercept_only_re = summarise(update(m, . ~ . - (Days | Subject) + (1 | Subject))),
  ml = summarise(update(m, REML = FALSE)),
  short = summarise(update(m, data = short)),
  weighted_drop_days = summarise(update(mw, . ~ . - Days)),
  glmer_drop_period = summarise(update(g, . ~ . - period)),
  glmer_agq = summarise(update(g, nAGQ = 9)))

# drop1(): each droppable term's refit (by ML), printed and as numbers
sleep_f <- transform(sleepstudy, late = factor(Days > 4))
dropped <- function(fit, test, data_name) {
  d <- drop1(fit, test = test)
  list(lines = capture.output(print(d)), rows = rownames(d), npar = d$npar, AIC = d$AIC,
       LRT = if (test == "Chisq") d$LRT else NULL,
       p = if (test == "Chisq") d[["Pr(Chi)"]] else NULL)
}
quad <- lmer(Reaction ~ Days + I(Days^2) + (Days | Subject), sleepstudy)
inter <- lmer(Reaction ~ Days * late + (1 | Subject), sleep_f)
drop1s <- list(
  quadratic = dropped(quad, "none"),
  quadratic_chisq = dropped(quad, "Chisq"),
  interaction = dropped(inter, "Chisq"),
  glmer = dropped(g, "Chisq"))

# hatvalues(): the hat matrix's diagonal (unweighted and with prior weights)
m_int_w <- lmer(Reaction ~ Days + (1 | Subject), sleep_w, weights = w)
hats <- list(sleep = unname(hatvalues(m)), weighted = unname(hatvalues(m_int_w)))

# influence(): refits with each subject (or each observation) deleted; Cook's distances
inf_subject <- influence(m, groups = "Subject")
inf_obs <- influence(lmer(Yield ~ 1 + (1 | Batch), Dyestuff))
influences <- list(
  subject = list(cooks = unname(cooks.distance(inf_subject)),
                 deleted = unname(as.matrix(inf_subject[["fixed.effects[-Subject]"]]))),
  observation = list(cooks = unname(cooks.distance(inf_obs))))

# lmList(): an lm in each group; the residual standard error pooled
lml <- lmList(Reaction ~ Days | Subject, sleepstudy)
ci <- confint(lml)
lmlist <- list(lines = capture.output(print(lml)), levels = rownames(coef(lml)),
               coef = unname(as.matrix(coef(lml))), sigma = summary(lml)$RSE,
               lower = unname(ci[, 1, ]), upper = unname(ci[, 2, ]))

out <- list(lme4_version = as.character(packageVersion("lme4")),
            R_version = R.version.string, formulas = formulas, models = models,
            lmlist = lmlist, hatvalues = hats, influence = influences,
            drop1 = drop1s)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = FALSE),
           "tests/reference/lme4_update.json")
