# lme4's checks of a fit's design and convergence, message by message: check.scaleX
# ("Some predictor variables are on very different scales") and check.conv.hess
# ("Model is nearly unidentifiable: ..."), for models that trigger them and some that do not.
# Run from the repository root:   Rscript tests/reference/lme4_checks.R
# Writes tests/reference/lme4_checks.json
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
source("tests/reference/common.R")

sleep <- sleepstudy
sleep$Minutes <- sleep$Days * 24 * 60 * 10   # sd ~ 41,000
sleep$Weeks <- sleep$Days / 7000             # sd ~ 4e-4
set.seed(7)
sleep$small <- round(rnorm(nrow(sleep), sd = 0.05), 5)
sleep$large <- round(rnorm(nrow(sleep), sd = 80), 3)   # within [1e-3, 1e3], 1,600 × small's
cb <- cbpp
cb$sz <- cb$size * 100

cases <- list(
  minutes = list(data = "sleep", formula = "Reaction ~ Minutes + (1 | Subject)"),
  weeks = list(data = "sleep", formula = "Reaction ~ Weeks + (1 | Subject)"),
  ratio = list(data = "sleep", formula = "Reaction ~ small + large + (1 | Subject)"),
  days = list(data = "sleep", formula = "Reaction ~ Days + (1 | Subject)"),
  cbpp_sz = list(data = "cb", formula = "cbind(incidence, size - incidence) ~ period + sz + (1 | herd)",
                 family = "binomial")
)
frames <- list(sleep = sleep, cb = cb)

out <- lapply(cases, function(spec) {
  d <- frames[[spec$data]]
  call <- if (is.null(spec$family)) {
    bquote(lmer(.(as.formula(spec$formula)), .(d)))
  } else {
    bquote(glmer(.(as.formula(spec$formula)), .(d), family = .(spec$family)))
  }
  q <- fit_quietly(call)
  c(spec, list(warnings = q$warnings, messages = q$messages,
               conv_messages = as.character(unlist(q$fit@optinfo$conv$lme4$messages)),
               logLik = as.numeric(logLik(q$fit)), fixef = unname(fixef(q$fit))))
})
write.csv(sleep, gzfile("tests/reference/sleep_scales.csv.gz"), row.names = FALSE)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/reference/lme4_checks.json")
