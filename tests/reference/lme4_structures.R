# Reference structures from real lme4 runs: Zt, Lambda(theta), theta, lower bounds, term and
# level names, and model matrices from R's model.matrix. Run from the repository root:
#     Rscript tests/reference/lme4_structures.R
# Writes tests/reference/lme4_structures.json (committed; the tests read it, R not needed).
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

sparse_triplets <- function(M) {
  M <- as(M, "TsparseMatrix")
  list(i = M@i, j = M@j, x = M@x, dim = dim(M))
}

structure_of <- function(name, formula, data, REML = TRUE) {
  fit <- lmer(formula, data = data, REML = REML)
  Zt <- getME(fit, "Zt")
  list(
    data = name,
    formula = paste(deparse(formula, width.cutoff = 500), collapse = " "),
    Zt = sparse_triplets(Zt),
    Zt_rownames = rownames(Zt),
    Lambda = sparse_triplets(getME(fit, "Lambda")),
    theta = unname(getME(fit, "theta")),
    theta_names = names(getME(fit, "theta")),
    lower = unname(getME(fit, "lower")),
    cnms = lapply(getME(fit, "cnms"), unname),
    cnms_groups = names(getME(fit, "cnms")),
    flist_levels = lapply(getME(fit, "flist"), levels),
    X_colnames = colnames(getME(fit, "X"))
  )
}

sleepstudy$SubjectDays <- sleepstudy$Days  # keep data identical to the embedded copy
out <- list(
  lme4_version = as.character(packageVersion("lme4")),
  structures = list(
    structure_of("sleepstudy", Reaction ~ Days + (Days | Subject), sleepstudy),
    structure_of("sleepstudy", Reaction ~ Days + (Days || Subject), sleepstudy),
    structure_of("sleepstudy", Reaction ~ Days + I(Days^2) + (1 + Days + I(Days^2) | Subject),
                 sleepstudy),
    structure_of("Pastes", strength ~ 1 + (1 | batch/cask), Pastes),
    structure_of("Penicillin", diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin),
    structure_of("Dyestuff", Yield ~ 1 + (1 | Batch), Dyestuff)
  )
)

# Model matrices from R on a small mixed-type data set (written out with the numbers).
set.seed(1)
mm_data <- data.frame(
  x = round(runif(24, 0, 3), 3),
  z = round(rnorm(24), 3),
  f = factor(rep(c("lo", "mid", "hi"), 8), levels = c("lo", "mid", "hi")),
  g = factor(rep(c("a", "b"), each = 12)),
  b = rep(c(TRUE, FALSE, FALSE), 8)
)
mm_formulas <- c("~ x", "~ x + f", "~ x * f", "~ 0 + f", "~ f:g", "~ x:f",
                 "~ f * g", "~ I(x^2) + log(x + 1)", "~ poly(x, 2)", "~ poly(x, 3) + z",
                 "~ scale(x)", "~ b", "~ x + f + g + f:g + x:g", "~ (x + z + f)^2",
                 "~ x/f", "~ C(f, sum)", "~ 0 + x + f:g", "~ exp(z) + sqrt(x) + abs(z)",
                 "~ I(x > 1)", "~ g/x", "~ f + x - 1")
out$model_matrices <- lapply(mm_formulas, function(f) {
  M <- model.matrix(as.formula(f), mm_data)
  list(formula = f, colnames = colnames(M), values = unname(M))
})
out$model_matrix_data <- mm_data
out$model_matrix_data$f <- as.character(mm_data$f)
out$model_matrix_data$g <- as.character(mm_data$g)
out$model_matrix_levels <- list(f = levels(mm_data$f), g = levels(mm_data$g))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"),
           "tests/reference/lme4_structures.json")
cat("wrote tests/reference/lme4_structures.json\n")
