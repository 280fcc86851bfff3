"""The page: one HTML document with its styles and script inline.

Self-contained on purpose: campaign managers open it from a share or an e-mail, often
offline, and a page that fetched a font, a script or an image from a CDN would leak that it
was opened (and break without a network). The Content-Security-Policy below makes the browser
refuse any request the page might still try, so "no request to any host" is enforced by the
browser, not only by our care. Fonts are the reader's system fonts; charts are inline SVG.

The script only filters and sorts rows the server already rendered: without it every row is
shown, in order of spend.
"""

from __future__ import annotations

import jinja2
from markupsafe import Markup, escape

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

STYLE = """
:root{--fg:#1d2430;--muted:#5b6575;--line:#dde2e8;--bg:#f4f6f8;--card:#fff;--head:#1f3550}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,
  sans-serif;color:var(--fg);background:var(--bg)}
header{background:var(--head);color:#fff;padding:14px 18px}
header h1{margin:0 0 4px;font-size:1.45em}
header p{margin:0;color:#d5e2f2}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);
  padding:6px 18px;overflow-x:auto;white-space:nowrap}
nav a{color:#24508a;margin-right:16px;text-decoration:none;font-weight:600}
main{max-width:1240px;margin:0 auto;padding:4px 14px 36px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;
  padding:10px 18px 16px;margin:16px 0;scroll-margin-top:44px}
h2{margin:.3em 0 .5em;font-size:1.3em}
h3{margin:1.1em 0 .4em;font-size:1.05em}
p.note,.muted{color:var(--muted);font-size:.92em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,150px),1fr));gap:8px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.card .label{color:var(--muted);font-size:.85em}
.card .value{font-size:1.35em;font-weight:650;font-variant-numeric:tabular-nums}
.card .change{font-size:.88em;color:var(--muted)}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f8f9fb;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.chip{display:inline-block;padding:0 7px;border-radius:10px;border:1.5px solid var(--c);
  font-size:.8em;font-weight:600;white-space:nowrap;background:#fff}
.chip::before{content:"";display:inline-block;width:.6em;height:.6em;border-radius:50%;
  background:var(--c);margin-right:4px}
.bar{height:.7em;background:var(--c);border-radius:2px;min-width:1px}
.sev{display:inline-block;padding:0 6px;border-radius:4px;color:#fff;font-size:.8em;
  font-weight:700;text-transform:uppercase}
.sev-critical{background:#b2182b}.sev-high{background:#c4452f}
.sev-medium{background:#6a5c9c}.sev-low{background:#666}
.flag-grid,.campaign-grid{display:grid;gap:12px;
  grid-template-columns:repeat(auto-fill,minmax(min(100%,360px),1fr))}
.flag,.campaign{border:1px solid var(--line);border-radius:6px;padding:8px 12px;
  overflow-wrap:anywhere}
.flag h3,.campaign h3{margin:.2em 0 .3em;font-size:1em}
.flag dl{display:grid;grid-template-columns:auto 1fr;gap:1px 10px;margin:.4em 0;font-size:.9em}
.flag dt{color:var(--muted)}.flag dd{margin:0}
svg.chart{width:100%;height:auto;display:block}
.legend span{margin-right:14px;display:inline-block}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
#explorer-filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:end;margin-bottom:8px}
#explorer-filters label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
#explorer-filters select,#explorer-filters input{font:inherit;font-size:.95em;padding:3px;
  max-width:16em}
#explorer-table th button{all:unset;cursor:pointer}
#explorer-table th button:focus-visible{outline:2px solid #24508a;outline-offset:2px}
#explorer-table th[aria-sort=ascending] button::after{content:" ▲"}
#explorer-table th[aria-sort=descending] button::after{content:" ▼"}
#explorer-table td.reason{min-width:30em;white-space:normal}
#explorer-table td:first-child{min-width:11em;width:16em;overflow-wrap:anywhere}
#explorer-table tbody tr:hover{background:#f3f7fc}
.explorer-scroll{max-height:70vh;overflow:auto}
.explorer-scroll thead th{position:sticky;top:0;z-index:1}
.reason{background:#f7f9fb;border-left:3px solid var(--c);padding:6px 10px;margin:.5em 0}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(92px,1fr));gap:4px 8px;
  margin:.4em 0}
.stats div{display:flex;flex-direction:column}
.stats .label{color:var(--muted);font-size:.78em}
.stats .value{font-weight:600;font-variant-numeric:tabular-nums}
ul.checks{margin:.3em 0;padding-left:1.2em;font-size:.9em}
footer{max-width:1240px;margin:0 auto;padding:0 14px 30px;color:var(--muted);font-size:.85em}
code{font-size:.92em}
.warn{background:#fff4e0;border-left:3px solid #E69F00;padding:6px 10px}
@media (max-width:640px){
  body{font-size:14px}
  section{padding:8px 10px 12px;margin:10px 0}
  main{padding:2px 6px 24px}
  header h1{font-size:1.2em}
  .barcol{display:none}
}
"""

SCRIPT = """
(function () {
  var table = document.getElementById("explorer-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var selects = Array.prototype.slice.call(
    document.querySelectorAll("#explorer-filters select"));
  var search = document.getElementById("explorer-search");
  var count = document.getElementById("explorer-count");
  function apply() {
    var wanted = selects.filter(function (s) { return s.value !== ""; });
    var query = search.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var ok = wanted.every(function (s) { return row.dataset[s.dataset.filter] === s.value; });
      if (ok && query) { ok = row.cells[0].textContent.toLowerCase().indexOf(query) >= 0; }
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = "Showing " + shown + " of " + rows.length + " campaigns";
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  document.getElementById("explorer-reset").addEventListener("click", function () {
    selects.forEach(function (s) { s.value = ""; });
    search.value = "";
    apply();
  });
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, index) {
    th.querySelector("button").addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.dataset.type === "num";
      var sign = ascending ? 1 : -1;
      rows.sort(function (a, b) {
        var x = a.cells[index].dataset.v, y = b.cells[index].dataset.v;
        if (x === "" && y === "") { return 0; }
        if (x === "") { return 1; }   /* unknown values last, whichever the direction */
        if (y === "") { return -1; }
        if (numeric) { return sign * (parseFloat(x) - parseFloat(y)); }
        return sign * x.localeCompare(y);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  apply();
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Campaign report · week of {{ window.week_start }}</title>
<style>{{ style }}</style>
</head>
<body><header>
<h1>Campaign report: week of {{ window.week_start }}</h1>
<p>Monday {{ window.week_start }} to Sunday {{ window.week_end }} ·
{{ explorer.count }} campaigns judged · {{ flags|length }} anomaly flags</p>
</header>
<nav><a href="#overview">Overview</a><a href="#anomalies">Anomalies</a><a
href="#explorer">Explorer</a><a href="#scatter">CPL vs conversion</a><a
href="#campaigns">Single campaigns</a></nav>
<main>

<section id="overview" data-section="overview">
<h2>Overview</h2>
<p id="data-window">
<strong>Data window.</strong> The week {{ window.week_start }} – {{ window.week_end }}:
{% if window.delivery_days %}delivery reported on {{ window.delivery_days }} of 7 days
({{ window.first_delivery }} to {{ window.last_delivery }}){% else %}no delivery reported
{% endif %}.
{% if window.health_days %}Health buckets judge the {{ window.health_days }} days
{{ window.health_start }} – {{ window.health_end }}.{% endif %}{{ " " }}
Anomaly flags judge each day only on the days before it.
</p>

<h3>The week's totals</h3>
{% if 0 < window.covered_days < 7 %}<p class="warn" id="partial-week">The data covers only {{
window.covered_days }} of the week's 7 days ({{ window.first_covered }}{% if
window.covered_days > 1 %} to {{ window.last_covered }}{% endif %}): the changes below compare a
partial week with the week before.</p>{% endif %}
<div class="cards" id="week-totals">
{% for card in totals %}
<div class="card" data-metric="{{ card.key }}" data-v="{{ card.value.raw }}"
 data-previous="{{ card.previous.raw }}" data-change="{{ card.change_raw }}">
<div class="label">{{ card.label }}</div>
<div class="value">{{ card.value.text }}</div>
<div class="change">{% if card.direction == "up" %}▲ {% elif card.direction == "down" %}▼ {% endif
%}{% if card.previous.raw == "" %}no figure for last week{% else %}{{ card.change_text }} vs last
week ({{ card.previous.text }}){% endif %}</div>
</div>
{% endfor %}
</div>
{% if platforms %}
<div class="table-wrap"><table id="platform-totals">
<thead><tr><th>Platform</th><th class="num">Spend</th><th class="num">Leads</th>
<th class="num">CPL</th><th class="num">Conv. rate (conv. / clicks)</th><th class="num">ROAS</th>
</tr></thead>
<tbody>
{% for row in platforms %}<tr><td>{{ row.platform }}</td>{{ num(row.spend) }}{{ num(row.leads)
}}{{ num(row.cpl) }}{{ num(row.conversion_rate) }}{{ num(row.roas) }}</tr>
{% endfor %}</tbody></table></div>
{% endif %}

<h3>Campaigns per health bucket</h3>
<div class="table-wrap"><table id="bucket-counts">
<thead><tr><th>Bucket</th><th class="num">This week</th><th class="num">Last week</th>
<th class="num">Change</th></tr></thead>
<tbody>
{% for b in buckets %}<tr data-bucket="{{ b.bucket }}"><td>{{ chip(b.bucket) }}</td>
<td class="num" data-v="{{ b.current }}">{{ b.current }}</td>
<td class="num" data-v="{{ b.previous if b.previous is not none else '' }}">{{
 b.previous if b.previous is not none else '–' }}</td>
<td class="num">{{ b.change_text }}</td></tr>
{% endfor %}</tbody></table></div>
{% if moves %}<p class="note">Moved this week: {% for m in moves %}{{ m.n }} {{ m.from }} → {{
m.to }}{{ "; " if not loop.last }}{% endfor %}. A campaign new this week has no move.</p>{% endif %}

<h3>Spend per recommended action</h3>
<p class="note">Spend, leads and conversions over the buckets' window
({{ window.health_start }} – {{ window.health_end }}), as in <code>health_action_summary</code>.</p>
<div class="table-wrap"><table id="action-spend">
<thead><tr><th>Action</th><th class="num">Campaigns</th><th class="num">Spend</th>
<th class="num">Share</th><th class="barcol" style="width:22%"></th><th class="num">Leads</th>
<th class="num">Converted</th></tr></thead>
<tbody>
{% for a in actions %}<tr data-action="{{ a.action }}"><td>{{ a.action }}</td>{{ num(a.n_campaigns)
}}{{ num(a.spend) }}{{ num(a.share) }}<td class="barcol"><div class="bar"
 style="--c:{{ a.colour }};width:{{ '%.1f'|format(a.share_width) }}%"></div></td>{{
num(a.leads) }}{{ num(a.converted) }}</tr>
{% endfor %}</tbody></table></div>

<h3>Quarantined rows</h3>
<p id="quarantine-week" data-rows="{{ quarantine.week_rows.raw }}"
 data-spend="{{ quarantine.week_spend.raw }}" data-source="{{ quarantine.source }}">
Rows dated in this week that broke the data contract and were set aside:
<strong>{{ quarantine.week_rows.text }}</strong>, with <strong>{{ quarantine.week_spend.text
}}</strong> of spend not counted in the totals above (the raw files' spend for the week is the
totals' spend plus this). {% if quarantine.published %}The whole quarantine holds {{
quarantine.total_rows }} rows, {{ quarantine.undated_rows }} of them in no week (campaign rows,
or a date that cannot be read).{% else %}<span id="quarantine-missing">The quarantine table
(<code>quarantine.parquet</code>) is not in this out dir, so the whole quarantine and its rows
by file and reason are unknown here.</span>{% endif %}
</p>
{% if quarantine.by_reason %}<details><summary>Quarantine by file and reason</summary>
<div class="table-wrap"><table id="quarantine-reasons"><thead><tr><th>File</th><th>Reason</th>
<th class="num">Rows</th></tr></thead><tbody>
{% for q in quarantine.by_reason %}<tr><td>{{ q.file }}</td><td>{{ q.reason }}</td>
<td class="num" data-v="{{ q.rows }}">{{ q.rows }}</td></tr>
{% endfor %}</tbody></table></div></details>{% endif %}
</section>

<section id="anomalies" data-section="anomalies">
<h2>Anomalies</h2>
<p>{{ flags|length }} flag{{ "" if flags|length == 1 else "s" }} this week:
{% for sev, n in severity_counts.items()|reverse if n %}{{ n }} {{ sev
}}{{ ", " if not loop.last }}{% endfor %}{% if not flags %}none{% endif %}.
Critical and high first, surest first.</p>
<p class="legend note"><span><i style="background:#33506B"></i>the metric's recent values</span>
<span><i style="background:#B2182B;border-radius:50%"></i>flagged value</span>
<span><i style="background:#4393C3;opacity:.5"></i>expected band (dash: expected value or the
baseline level)</span><span><i style="background:#e6e6e6"></i>this report's week</span></p>
{% macro flag_card(f) %}
<article class="flag" id="{{ f.anchor }}" data-severity="{{ f.severity }}"
 data-campaign="{{ f.campaign_id }}" data-metric="{{ f.metric }}" data-grain="{{ f.grain }}"
 data-period="{{ f.period_start }}">
<h3><span class="sev sev-{{ f.severity }}">{{ f.severity }}</span> {{ f.metric_label }} ·
{{ f.campaign }}</h3>
<div class="muted">{{ f.platform }}{{ " · " if f.platform }}{{ f.period }} · {{ f.anomaly_type }}
· confidence {{ f.confidence }}</div>
{% if f.chart %}{{ f.chart }}{% elif f.chart_left_out and max_flag_charts %}<p class="note">Not
drawn: the {{ max_flag_charts }} most severe, surest flags of the week have a chart.</p>{% elif
f.chart_left_out %}<p class="note">Not drawn: flag charts are off (max_flag_charts 0).</p>{% else
%}<p class="note">No stored series to draw for this metric.</p>{% endif %}
<dl><dt>Value</dt><dd data-v="{{ f.value.raw }}">{{ f.value.text }}</dd>
<dt>Expected</dt><dd data-v="{{ f.expected.raw }}">{{ f.expected.text }}{% if f.band
%} (normal range {{ f.band }}){% endif %}</dd>
<dt>Why</dt><dd>{{ f.explanation }}</dd>
<dt>Do</dt><dd><strong>{{ f.suggested_action }}</strong></dd></dl>
</article>
{% endmacro %}
<div class="flag-grid" id="top-flags">
{% for f in flags if f.top %}{{ flag_card(f) }}{% else %}<p>No critical or high flag this
week.</p>{% endfor %}
</div>
{% set others = flags|rejectattr("top")|list %}
{% if others %}<details id="other-flags"><summary>{{ others|length }} medium and low
flags</summary><div class="flag-grid">
{% for f in others %}{{ flag_card(f) }}{% endfor %}
</div></details>{% endif %}
</section>

<section id="explorer" data-section="explorer">
<h2>Campaign explorer</h2>
<p class="note">Every campaign judged this week. "Window" columns are the buckets'
{{ window.health_days }} days; "week" columns this week alone. Click a heading to sort.</p>
<form id="explorer-filters" onsubmit="return false">
{% for f in explorer.filters %}<label>{{ f.label }}
<select data-filter="{{ f.name }}" name="{{ f.name }}"><option value="">All</option>
{% for o in f.options %}<option value="{{ o }}">{{ o }}</option>{% endfor %}
</select></label>
{% endfor %}<label>Campaign<input id="explorer-search" type="search"
 placeholder="name or id"></label>
<button id="explorer-reset" type="button">Reset</button>
</form>
<p id="explorer-count" class="muted">Showing {{ explorer.count }} of
{{ explorer.count }} campaigns</p>
<div class="table-wrap explorer-scroll"><table id="explorer-table">
<thead><tr>{% for c in explorer.columns %}<th{% if c.num %} class="num"{% endif %}
 data-type="{{ 'num' if c.num else 'text' }}"><button type="button">{{ c.label
}}</button></th>{% endfor %}</tr></thead>
<tbody>
{{ explorer_rows }}</tbody></table></div>
</section>

<section id="scatter" data-section="scatter">
<h2>CPL against conversion rate</h2>
{% if scatter.svg %}{{ scatter.svg }}{% endif %}
<p class="note">Each dot is a campaign over the buckets' window ({{ scatter.note }}); hollow dots
are outside the benchmark universe (fewer than the leads needed, or no spend) and do not shape the
thresholds. The dashed lines are the percentiles the rules compared each campaign with
(<code>campaign_health</code>'s <code>cpl_p25</code>, <code>cpl_p50</code>,
<code>cpl_p75</code> and <code>conv_p75</code>): HERO converts at or above the conversion
line with a CPL at or below P25 (green zone), GOOD the same up to P50 (blue zone), MIXED converts
with a CPL above P50, and BAD has no conversion, enough leads and a CPL at or above P75 (red
segment on the zero line). Everything else, and every campaign with too little data, is
NEEDS_MORE_DATA.</p>
</section>

<section id="campaigns" data-section="campaigns">
<h2>Single campaigns</h2>
<p class="note">BAD and HERO campaigns and every campaign whose bucket changed this week: the
rule's reason in words and the numbers behind it (window {{ window.health_start }} –
{{ window.health_end }}).</p>
<div class="campaign-grid">
{% for c in campaigns %}<article class="campaign" id="{{ c.anchor }}"
 data-campaign="{{ c.campaign_id }}" data-bucket="{{ c.bucket }}">
<h3>{{ c.campaign }}</h3>
<div class="muted">{{ c.context }}</div>
<p>{{ chip(c.bucket) }}{% if c.changed %} <span class="muted">was {{ c.previous_bucket
}}</span>{% endif %} → <strong>{{ c.action }}</strong></p>
<p class="reason" style="--c:{{ c.colour }}">{{ c.reason }}</p>
<div class="stats">{% for label, cell in c.stats %}<div><span class="label">{{ label
}}</span><span class="value" data-v="{{ cell.raw }}">{{ cell.text }}</span></div>{% endfor %}</div>
<ul class="checks">{% for line in c.checks %}<li>{{ line }}</li>{% endfor %}</ul>
<p class="muted">{{ c.week }}</p>
{% if c.flags %}<p class="note">Flags this week: {% for f in c.flags %}<a href="#{{ f.anchor
}}">{{ f.metric }} ({{ f.severity }})</a>{{ ", " if not loop.last }}{% endfor %}</p>{% endif %}
</article>
{% else %}<p>No BAD or HERO campaign and no change of bucket this week.</p>
{% endfor %}
</div>
</section>
</main>
<footer>Built from the published tables of week {{ window.week_start }}
(<code>campaign_health</code>, <code>anomaly_flags</code>, <code>weekly_totals</code>,
<code>weekly_campaign_metrics</code>, <code>daily_campaign_metrics</code>,
<code>quarantine</code>); rebuild with
<code>campaign-pipeline report --week {{ window.week_start }}</code>. A dash is an unknown value
(nothing reported, or a zero denominator), never a zero.</footer>
<script>{{ script }}</script>
</body>
</html>
"""

_ENVIRONMENT = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
)
_TEMPLATE = _ENVIRONMENT.from_string(PAGE)


def _num_td(raw: str, text: str) -> str:
    """The cell of a number from its raw value and its text, both escaped already."""
    return f'<td class="num" data-v="{raw}">{text}</td>'


def num_cell(cell: dict) -> Markup:
    """A table cell of a shown number (``build._cell``): its text, and its raw value to sort on."""
    return Markup(_num_td(escape(cell["raw"]), escape(cell["text"])))


def chip(bucket: str, bucket_colours: dict[str, str]) -> Markup:
    """A health bucket's name on its colour."""
    colour = escape(bucket_colours[bucket])
    return Markup(f'<span class="chip" style="--c:{colour}">{escape(bucket)}</span>')


_SEPARATOR = "\x1f"  # the ASCII unit separator: text rarely holds it (`_escaped`)


def _escaped(values: list[str]) -> list[str]:
    """``escape`` of each of ``values``, in one call: escaping replaces each character on its
    own, so the values joined by a character none of them holds, escaped and split on that
    character, are the values escaped. A call per cell was most of the explorer's time."""
    joined = _SEPARATOR.join(values)
    if joined.count(_SEPARATOR) != max(len(values) - 1, 0):
        return [str(escape(value)) for value in values]
    return str(escape(joined)).split(_SEPARATOR) if values else []


def explorer_rows(explorer: dict, bucket_colours: dict[str, str]) -> Markup:
    """The explorer's table rows from its columns (``build.explorer``), escaped as the template
    escapes.

    Written here rather than by the template: a page holds a row per campaign judged (up to
    16,000), and a Jinja macro call per cell took 3.4 of a large page's 8.3 s. Each column's
    cells are written in one pass, then the rows are joined."""
    columns = []
    for key, cell in explorer["cells"].items():
        raws, texts = _escaped(cell["raw"]), _escaped(cell["text"])
        if cell["num"]:
            columns.append([_num_td(raw, text) for raw, text in zip(raws, texts)])
        elif key == "health_bucket":
            was = [
                f'<br><span class="muted">was\n{previous}</span>' if changed else ""
                for previous, changed in zip(
                    _escaped(explorer["previous_bucket"]), explorer["changed"]
                )
            ]
            columns.append(
                [
                    f'<td data-v="{raw}">{chip(text, bucket_colours)}{note}</td>'
                    for raw, text, note in zip(raws, cell["text"], was)
                ]
            )
        else:
            opening = '<td class="reason" data-v="' if key == "reason" else '<td data-v="'
            columns.append([f'{opening}{raw}">{text}</td>' for raw, text in zip(raws, texts)])
    attrs = [
        [f' data-{escape(name)}="{value}"' for value in _escaped(values)]
        for name, values in explorer["attrs"].items()
    ]
    row_attrs = ["".join(parts) for parts in zip(*attrs)] if attrs else [""] * explorer["count"]
    return Markup(
        "".join(
            f'<tr data-campaign="{campaign}"{attributes}>{"".join(cells)}</tr>\n'
            for campaign, attributes, *cells in zip(
                _escaped(explorer["campaign_ids"]), row_attrs, *columns
            )
        )
    )


def render_page(context: dict) -> str:
    """The page for a report context (``build.report_context``); text is HTML-escaped, the
    charts (our own SVG) are not."""
    flags = [{**f, "chart": Markup(f["chart"]) if f["chart"] else None} for f in context["flags"]]
    scatter = {
        **context["scatter"],
        "svg": Markup(context["scatter"]["svg"]) if context["scatter"]["svg"] else None,
    }
    return _TEMPLATE.render(
        **{**context, "flags": flags, "scatter": scatter},
        explorer_rows=explorer_rows(context["explorer"], context["bucket_colours"]),
        num=num_cell,
        chip=lambda bucket: chip(bucket, context["bucket_colours"]),
        csp=CSP,
        style=Markup(STYLE),
        script=Markup(SCRIPT),
    )
