// The Metrics tab's histogram (ui/metrics_page.py), drawn with the page's own plotly.js.
const gd = element.querySelector('.es-metric-hist');
function draw() {
  if (typeof Plotly === 'undefined') { setTimeout(draw, 50); return; }
  const text = props.value;
  if (!text) { Plotly.purge(gd); return; }
  const fig = JSON.parse(text);
  Plotly.react(gd, fig.data, fig.layout, {displaylogo: false, responsive: true,
                                          modeBarButtonsToRemove: ['sendChartToCloud', 'toImage']});
}
watch('value', draw);
draw();
