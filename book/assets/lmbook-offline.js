// Serve the book's front end from the book itself (no CDN).
// Loaded right after d3, jQuery and require.js: registers the two globals as AMD
// modules for bertviz, and points requirejs at the local copies of the widget
// front ends so the ipywidgets HTML manager never falls back to a CDN.
(function () {
  var vendor = new URL("vendor/", document.currentScript.src).href;
  if (window.d3) define("d3", [], function () { return window.d3; });
  if (window.jQuery) define("jquery", [], function () { return window.jQuery; });
  window.__jupyter_widgets_assets_path__ = vendor + "html-manager/";
  requirejs.config({
    paths: {
      anywidget: vendor + "anywidget/index",
    },
  });
})();
