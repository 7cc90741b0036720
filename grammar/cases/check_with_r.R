# Writes R's own reading of every corpus formula that plain R / lme4 understands, in
# lmerpy's canonical form, so the tests can check the corpus against R without R installed:
#     Rscript grammar/cases/check_with_r.R    (from the repository root)
# Output: tests/reference/r_formula_terms.json. Fixed parts come from terms() (on lme4's
# nobars()), random parts from lme4's expandDoubleVerts() + findbars().
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

canon_terms <- function(rhs, lhs = "") {
  # the response is part of the formula: R orders interaction factors with it first
  tt <- terms(as.formula(paste(lhs, "~", rhs)))
  labs <- attr(tt, "term.labels")
  paste(c(if (attr(tt, "intercept") == 1) "1" else "0", labs), collapse = " + ")
}

canonical <- function(text) {
  f <- as.formula(text)
  f <- expandDoubleVerts(f)
  resp <- if (length(f) == 3) paste(deparse(f[[2]], width.cutoff = 500), collapse = "") else ""
  lhs <- if (nzchar(resp)) paste0(resp, " ") else ""
  fixed <- nobars(f)
  rhs_fixed <- if (is.null(fixed)) "1" else paste(deparse(fixed[[length(fixed)]], width.cutoff = 500), collapse = "")
  tt <- terms(as.formula(paste("~", rhs_fixed)))
  labs <- attr(tt, "term.labels")
  offs <- attr(tt, "offset")
  vars <- as.character(attr(tt, "variables"))[-1]
  parts <- canon_terms(rhs_fixed, resp)
  # terms() keeps offset() out of the labels; lmerpy prints offsets after the fixed terms
  if (!is.null(offs)) parts <- paste(c(parts, vars[offs]), collapse = " + ")
  bars <- findbars(f)
  for (b in bars) {
    lhs_b <- paste(deparse(b[[2]], width.cutoff = 500), collapse = "")
    grp <- paste(deparse(b[[3]], width.cutoff = 500, backtick = TRUE), collapse = "")
    grp <- gsub("[()]", "", grp)
    parts <- paste0(parts, " + (", canon_terms(lhs_b), " | ", grp, ")")
  }
  paste0(lhs, "~ ", parts)
}

lines <- readLines("grammar/cases/valid.tsv")
lines <- lines[!grepl("^#", lines) & nzchar(lines)]
out <- list()
for (line in lines) {
  text <- gsub("\\\\n", "\n", strsplit(line, "\t")[[1]][1])
  # lmerpy-only syntax that R cannot read the same way
  if (grepl("nn\\(|rbf\\(|\\.\\.\\.|center\\(|(^|[^A-Za-z0-9_.])\\.( |$)", text)) next
  res <- tryCatch(canonical(text), error = function(e) NA_character_)
  if (!is.na(res)) out[[text]] <- res
}
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/reference/r_formula_terms.json")
cat("checked", length(out), "formulas with R\n")
