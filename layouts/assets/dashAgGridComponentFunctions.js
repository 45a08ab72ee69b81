/* Cell renderers for dash-ag-grid. Portal text is untrusted: every label here is a React text child
 * (escaped by React), and a link is only made from an http(s) URL, so a `javascript:` URL from a
 * portal stays plain text. No innerHTML anywhere. */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

function maturityHttpUrl(url) {
  return typeof url === "string" && /^https?:\/\/\S+$/i.test(url.trim()) ? url.trim() : null;
}

/* A link to the dataset on its portal; value = landing_url. */
dagcomponentfuncs.PortalLink = function (props) {
  var url = maturityHttpUrl(props.value);
  if (!url) { return null; }
  return React.createElement("a", {href: url, target: "_blank", rel: "noopener noreferrer nofollow"}, "portal \u2197");
};

/* A link to a page of this app whose whole path and query the server built (row field colDef.cellRendererParams.field):
 * only a path on this site ("/..." but not "//host") becomes a link; it is used as it is, not encoded again
 * (encoding it whole made "/datasets?..." a city key: /city/%2Fdatasets%3F...). Text = the cell value. */
dagcomponentfuncs.AppPath = function (props) {
  var p = props.colDef.cellRendererParams || {};
  var href = props.data ? props.data[p.field] : null;
  var text = props.value === null || props.value === undefined ? "" : String(props.value) + (p.unit || "");
  if (typeof href !== "string" || !/^\/(?![\/\\])/.test(href)) { return text; }
  return React.createElement("a", {href: href}, text);
};

/* A link inside the app: href = colDef.cellRendererParams.prefix + encoded row field, text = the cell value. */
dagcomponentfuncs.AppLink = function (props) {
  var p = props.colDef.cellRendererParams || {};
  var key = props.data ? props.data[p.field] : null;
  if (key === null || key === undefined) { return props.value === null ? null : String(props.value); }
  var href = p.prefix + encodeURIComponent(String(key)) + (p.suffix || "");
  return React.createElement("a", {href: href}, props.value === null || props.value === undefined ? "" : String(props.value));
};
