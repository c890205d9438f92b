'use strict';
// Only the traces embedscape's page draws: the map (scattergl) and the metric histograms (bar).
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/scattergl'), require('plotly.js/lib/bar')]);
module.exports = Plotly;
