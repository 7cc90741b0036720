# lme4's allFit(): each model refitted by every optimiser lme4 offers, for lmerpy's
# allFit (every optimiser of lmerpy's must reach the optimum lme4's reach).
# Run from the repository root:   Rscript tests/reference/lme4_allfit.R
# Writes tests/reference/lme4_allfit.json
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

sim_binary <- read.csv("tests/reference/sim_binary.csv.gz")
sim_poisson <- read.csv("tests/reference/sim_poisson.csv.gz")
models <- list(
  sleep_slopes = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)",
                      REML = TRUE),
  penicillin_ml = list(data = "Penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
                       REML = FALSE),
  dyestuff2 = list(data = "Dyestuff2", formula = "Yield ~ 1 + (1 | Batch)", REML = TRUE),
  cbpp = list(data = "cbpp", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
              family = "binomial"),
  binary_slope = list(data = "sim_binary", formula = "y ~ t + (t | subject)", family = "binomial"),
  poisson_crossed = list(data = "sim_poisson", formula = "count ~ x + (1 | site) + (1 | year)",
                         family = "poisson")
)
datasets <- list(sleepstudy = sleepstudy, Penicillin = Penicillin, Dyestuff2 = Dyestuff2,
                 cbpp = cbpp, sim_binary = sim_binary, sim_poisson = sim_poisson)

describe <- function(spec) {
  d <- datasets[[spec$data]]
  fit <- if (is.null(spec$family)) {
    lmer(as.formula(spec$formula), d, REML = spec$REML)
  } else {
    glmer(as.formula(spec$formula), d, family = spec$family)
  }
  af <- suppressWarnings(suppressMessages(allFit(fit, verbose = FALSE)))
  s <- summary(af)
  per <- lapply(names(af)[s$which.OK], function(o) list(
    fixef = unname(s$fixef[o, ]), llik = unname(s$llik[o]), theta = unname(s$theta[o, ]),
    sdcor = unname(unlist(s$sdcor[o, ])), feval = unname(s$feval[o]),
    messages = as.character(unlist(s$msgs[[o]]))))
  names(per) <- names(af)[s$which.OK]
  nll <- -s$llik
  c(spec, list(optimizers = per, fixef_names = colnames(s$fixef),
               max_nll_difference = max(nll - min(nll)), sd_nll = sd(nll)))
}

out <- lapply(models, describe)
out$lme4_version <- as.character(packageVersion("lme4"))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/reference/lme4_allfit.json")
