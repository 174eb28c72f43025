// Render the math that pymdownx.arithmatex (generic mode) leaves as \( \) and \[ \],
// with the vendored KaTeX; re-run on every page of instant navigation.
function renderMath(body) {
  renderMathInElement(body, {
    delimiters: [
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
    ignoredClasses: ["highlight", "language-python"],
    throwOnError: false,
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(({ body }) => renderMath(body));
} else {
  document.addEventListener("DOMContentLoaded", () => renderMath(document.body));
}
