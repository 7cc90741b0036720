# Helpers shared by the reference scripts (source()d from the repository root).

# Evaluate a model-fitting call, collecting lme4's messages and warnings instead of printing.
fit_quietly <- function(call) {
  msgs <- character(0); warns <- character(0)
  fit <- withCallingHandlers(
    eval(call, globalenv()),
    message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") },
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(fit = fit, messages = msgs, warnings = warns)
}

# ranef(fit, condVar = TRUE) per grouping factor, wide and long (as.data.frame) forms.
describe_ranef <- function(fit) {
  re <- ranef(fit, condVar = TRUE)
  re_df <- as.data.frame(re)
  lapply(names(re), function(g) {
    d <- re[[g]]
    rows <- re_df[re_df$grpvar == g, ]
    list(group = g, levels = rownames(d), columns = colnames(d), values = unname(as.matrix(d)),
         long = list(term = as.character(rows$term), level = as.character(rows$grp),
                     condval = rows$condval, condsd = rows$condsd))
  })
}

# The simulated two-factor design of lmertest.R, emmeans.R and car_anova.R: groups g (12),
# factors A (3 levels) and B (2), a number x, the response y.
two_factor_data <- function() {
  set.seed(2)
  fac <- data.frame(g = factor(rep(1:12, each = 12)),
                    A = factor(rep(c("a1", "a2", "a3"), 48)),
                    B = factor(rep(c("b1", "b1", "b2", "b2"), 36)), x = round(rnorm(144), 3))
  fac$y <- round(1 + 0.5 * (fac$A == "a2") - 0.3 * (fac$B == "b2") + 0.4 * fac$x +
                 0.3 * (fac$A == "a3") * fac$x + rnorm(12)[fac$g] + rnorm(144), 3)
  fac
}
