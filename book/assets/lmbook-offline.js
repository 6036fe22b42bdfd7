// Serve the book's front end from the book itself (no CDN).
// Loaded right after d3, jQuery and require.js (see _config.yml):
// 1. registers the d3 and jQuery globals as the AMD modules bertviz asks for;
// 2. points requirejs at the local copies of the widget front ends, so the
//    ipywidgets HTML manager never falls back to a CDN;
// 3. hides `define.amd` until the page has loaded: the theme's UMD scripts
//    (clipboard.js, …) would otherwise call an anonymous define() outside
//    requirejs and throw "Mismatched anonymous define() module".
(function () {
  var vendor = new URL("vendor/", document.currentScript.src).href;
  if (window.d3) define("d3", [], function () { return window.d3; });
  if (window.jQuery) define("jquery", [], function () { return window.jQuery; });
  window.__jupyter_widgets_assets_path__ = vendor + "html-manager/";
  requirejs.config({
    paths: {
      anywidget: vendor + "anywidget/index",
      "@jupyter-widgets/html-manager/dist": vendor + "html-manager",
    },
  });
  var amd = define.amd;
  define.amd = undefined;
  window.addEventListener("load", function () { define.amd = amd; });
})();
