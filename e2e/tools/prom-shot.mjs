// Photographs Prometheus's graph page: one panel per key jobchat series,
// over the window a benchmark ran. Used by bench/metrics-shot.sh.
//   node e2e/tools/prom-shot.mjs <prometheus URL> <start unix> <end unix> <out.png>
import { findChromium, launch } from '../lib/browser.js';

const [base, start, end, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: prom-shot.mjs <prometheus URL> <start unix> <end unix> <out.png>');
  process.exit(2);
}
// Debian's Prometheus serves the classic UI, whose end time is UTC to the
// minute ("YYYY-MM-DD HH:mm"): end on the next whole minute and widen the
// range to still start at the run's start.
const endMinute = Math.ceil(Number(end) / 60) * 60;
const range = `${Math.max(60, endMinute - Number(start) + 5)}s`;
const endTime = new Date(endMinute * 1000).toISOString().replace('T', ' ').slice(0, 16);

// The series an operator watches during load: throughput, latency, what
// the engine holds, and the health of publishing.
const panels = [
  'sum(rate(jobchat_deliveries_total[5s]))',
  'histogram_quantile(0.99, sum by (le) (rate(jobchat_delivery_latency_seconds_bucket[5s])))',
  'histogram_quantile(0.99, sum by (le) (rate(jobchat_send_duration_seconds_bucket[5s])))',
  'sum by (protocol) (jobchat_open_sockets)',
  'sum(rate(jobchat_graphql_operations_total[5s])) by (outcome)',
  'jobchat_publish_queue_depth',
];
const params = new URLSearchParams();
panels.forEach((expr, i) => {
  params.set(`g${i}.expr`, expr);
  params.set(`g${i}.tab`, '0');
  params.set(`g${i}.range_input`, range);
  params.set(`g${i}.end_input`, endTime);
  params.set(`g${i}.moment_input`, endTime);
});

const chromium = findChromium();
if (!chromium.path) {
  console.error(chromium.skip || chromium.missing);
  process.exit(1);
}
const browser = await launch(chromium.path);
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  await page.goto(`${base}/classic/graph?${params}`, { waitUntil: 'networkidle0', timeout: 60_000 });
  // Each panel draws its chart (an SVG) once its query returns.
  await page.waitForFunction((n) => document.querySelectorAll('.graph svg').length >= n, { timeout: 60_000 }, panels.length);
  // The fixed navigation bar would land mid-picture in a full-page shot.
  await page.addStyleTag({ content: 'nav.navbar { display: none !important; }' });
  await new Promise((r) => setTimeout(r, 1000));
  await page.screenshot({ path: out, fullPage: true });
} finally {
  await browser.close();
}
