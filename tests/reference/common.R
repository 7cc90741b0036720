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
