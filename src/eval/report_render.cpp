// Markdown tables and the self-contained HTML report (inline CSS and SVG, no scripts, no network).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

#include "qforge/advise.hpp"
#include "qforge/report.hpp"

namespace qforge {

namespace {

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}
double mib(uint64_t b) { return static_cast<double>(b) / 1048576.0; }

std::string escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '&') o += "&amp;";
        else if (c == '"') o += "&quot;";
        else o += c;
    }
    return o;
}

const std::vector<uint64_t> kRamSizes = {8ull << 30, 16ull << 30, 24ull << 30, 32ull << 30, 64ull << 30, 96ull << 30, 128ull << 30, 192ull << 30};

struct Table {
    std::vector<std::string> head;
    std::vector<std::vector<std::string>> rows;
    std::string markdown() const {
        std::ostringstream os;
        os << "|";
        for (const auto& h : head) os << " " << h << " |";
        os << "\n|";
        for (size_t i = 0; i < head.size(); ++i) os << (i ? "---:|" : "---|");
        os << "\n";
        for (const auto& r : rows) {
            os << "|";
            for (const auto& c : r) os << " " << c << " |";
            os << "\n";
        }
        return os.str();
    }
    std::string html() const {
        std::ostringstream os;
        os << "<table><thead><tr>";
        for (const auto& h : head) os << "<th>" << escape(h) << "</th>";
        os << "</tr></thead><tbody>";
        for (const auto& r : rows) {
            os << "<tr>";
            for (const auto& c : r) os << "<td>" << escape(c) << "</td>";
            os << "</tr>";
        }
        os << "</tbody></table>";
        return os.str();
    }
};

Table memory_table(const Report& r) {
    Table t{{"type", "file size", "bits/weight", "memory at ctx " + std::to_string(r.n_ctx)}, {}};
    for (const auto& x : r.rows)
        t.rows.push_back({x.type, fmt("%.2f MiB", mib(x.file_bytes)), fmt("%.3f", x.bpw), fmt("%.2f MiB", mib(x.memory_bytes))});
    return t;
}

Table speed_table(const Report& r) {
    Table t{{"type", "file size", "prompt t/s", "generation t/s"}, {}};
    for (const auto& x : r.rows)
        t.rows.push_back({x.type, fmt("%.2f MiB", mib(x.file_bytes)), fmt("%.1f", x.pp_tps) + fmt(" ± %.1f", x.pp_sd),
                          fmt("%.1f", x.tg_tps) + fmt(" ± %.1f", x.tg_sd)});
    return t;
}

Table quality_table(const Report& r) {
    Table t{{"type", "bits/weight", "PPL", "mean KLD", "KLD p99", "same top %"}, {}};
    for (const auto& x : r.rows)
        t.rows.push_back({x.type + (x.pareto_quality && !x.is_base ? " *" : ""), fmt("%.3f", x.bpw), fmt("%.4f", x.ppl) + fmt(" ± %.4f", x.ppl_se),
                          x.is_base ? "base" : fmt("%.6f", x.kld), x.is_base ? "base" : fmt("%.6f", x.kld_p99), fmt("%.2f", x.same_top)});
    return t;
}

// A scatter chart with labelled points; `front` marks the Pareto-optimal ones and joins them.
std::string scatter(const Report& r, const std::string& id, const std::string& title, const std::string& ylabel,
                    const std::function<double(const ReportRow&)>& yf, bool logy, const std::function<bool(const ReportRow&)>& front,
                    bool skip_base) {
    const double W = 640, H = 360, L = 70, R = 20, T = 40, B = 50;
    std::vector<const ReportRow*> pts;
    for (const auto& x : r.rows)
        if (!(skip_base && x.is_base) && (!logy || yf(x) > 0)) pts.push_back(&x);
    std::ostringstream os;
    os << "<svg id=\"" << id << "\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
       << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << escape(title) << "\">";
    os << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" class=\"title\">" << escape(title) << "</text>";
    if (pts.empty()) return os.str() + "</svg>";
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    auto ty = [&](double v) { return logy ? std::log10(v) : v; };
    for (const auto* p : pts) {
        x0 = std::min(x0, mib(p->file_bytes));
        x1 = std::max(x1, mib(p->file_bytes));
        y0 = std::min(y0, ty(yf(*p)));
        y1 = std::max(y1, ty(yf(*p)));
    }
    const double xp = (x1 - x0) * 0.08 + 1e-9, yp = (y1 - y0) * 0.1 + 1e-9;
    x0 -= xp;
    x1 += xp;
    y0 -= yp;
    y1 += yp;
    auto sx = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
    auto sy = [&](double v) { return H - B - (ty(v) - y0) / (y1 - y0) * (H - T - B); };
    os << "<line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\"" << W - R << "\" y2=\"" << H - B << "\" class=\"axis\"/>";
    os << "<line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\"" << H - B << "\" class=\"axis\"/>";
    for (int i = 0; i <= 4; ++i) {
        const double xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
        os << "<text x=\"" << sx(xv) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" class=\"tick\">" << fmt("%.1f", xv) << "</text>";
        const double yl = logy ? std::pow(10.0, yv) : yv;
        os << "<text x=\"" << L - 6 << "\" y=\"" << sy(logy ? yl : yv) + 4 << "\" text-anchor=\"end\" class=\"tick\">"
           << fmt(logy ? "%.1e" : "%.4g", yl) << "</text>";
    }
    os << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\" class=\"label\">file size (MiB)</text>";
    os << "<text x=\"16\" y=\"" << (T + H - B) / 2 << "\" text-anchor=\"middle\" class=\"label\" transform=\"rotate(-90 16 " << (T + H - B) / 2
       << ")\">" << escape(ylabel) << "</text>";
    std::vector<const ReportRow*> fr;
    for (const auto* p : pts)
        if (front(*p)) fr.push_back(p);
    std::sort(fr.begin(), fr.end(), [](const ReportRow* a, const ReportRow* b) { return a->file_bytes < b->file_bytes; });
    if (fr.size() > 1) {
        os << "<polyline class=\"front\" points=\"";
        for (const auto* p : fr) os << sx(mib(p->file_bytes)) << "," << sy(yf(*p)) << " ";
        os << "\"/>";
    }
    for (const auto* p : pts) {
        const bool on = front(*p);
        os << "<circle cx=\"" << sx(mib(p->file_bytes)) << "\" cy=\"" << sy(yf(*p)) << "\" r=\"5\" class=\"" << (on ? "pt front-pt" : "pt")
           << "\"><title>" << escape(p->type) << "</title></circle>";
        os << "<text x=\"" << sx(mib(p->file_bytes)) + 7 << "\" y=\"" << sy(yf(*p)) - 7 << "\" class=\"ptlabel\">" << escape(p->type) << "</text>";
    }
    os << "</svg>";
    return os.str();
}

}  // namespace

std::string report_markdown(const Report& r) {
    std::ostringstream os;
    os << "## Memory\n\n" << memory_table(r).markdown() << "\n## Speed (" << r.machine << ", " << r.threads << " threads)\n\n"
       << speed_table(r).markdown() << "\n## Quality (" << r.n_chunks << " chunks of " << r.n_ctx << " tokens; KLD against the base; * = Pareto-optimal size/quality)\n\n"
       << quality_table(r).markdown();
    return os.str();
}

std::string report_html(const Report& r) {
    const QualityTable q = quality_from_report(r);
    std::ostringstream os;
    os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qforge report: " << escape(r.source) << "</title><style>"
       << "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}"
       << "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
       << "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
       << ".chart{border:1px solid #ddd;margin:1em 0;background:#fff}.axis{stroke:#444}.tick{font-size:11px;fill:#444}"
       << ".label{font-size:12px;fill:#222}.title{font-size:14px;font-weight:600}.pt{fill:#888}.front-pt{fill:#d9480f}"
       << ".front{fill:none;stroke:#d9480f;stroke-width:2;stroke-dasharray:4 3}.ptlabel{font-size:10px;fill:#333}"
       << "</style></head><body>\n<h1>qforge report</h1>\n<p>Source: <code>" << escape(r.source) << "</code> (" << fmt("%.2f", static_cast<double>(r.params) / 1e6)
       << " M parameters). Machine: " << escape(r.machine) << ", " << r.threads << " threads. Text: <code>" << escape(r.text) << "</code>, "
       << r.n_chunks << " chunks of " << r.n_ctx << " tokens. Orange points are Pareto-optimal: no other format is both smaller and better.</p>\n";
    os << "<h2>Quality against size</h2>\n"
       << scatter(r, "chart-kld", "Mean KL divergence vs file size (log scale)", "mean KLD", [](const ReportRow& x) { return x.kld; }, true,
                  [](const ReportRow& x) { return x.pareto_quality; }, true)
       << "\n"
       << scatter(r, "chart-ppl", "Perplexity vs file size", "perplexity", [](const ReportRow& x) { return x.ppl; }, false,
                  [](const ReportRow& x) { return x.pareto_quality; }, false)
       << "\n<h2>Speed against size</h2>\n"
       << scatter(r, "chart-speed", "Generation speed vs file size", "tokens/s", [](const ReportRow& x) { return x.tg_tps; }, false,
                  [](const ReportRow& x) { return x.pareto_speed; }, false)
       << "\n<h2>Memory</h2>\n" << memory_table(r).html() << "\n<h2>Speed</h2>\n" << speed_table(r).html() << "\n<h2>Quality</h2>\n"
       << quality_table(r).html() << "\n<h2>Which format for which machine</h2>\n<p>Best format that fits, for models of 1B to 70B "
       << "parameters at 4096 tokens of context: the smallest format whose mean KL divergence measured above is at most 0.002 "
       << "(practically lossless), else the lowest KL divergence that fits. Bits per weight are taken from this model; larger "
       << "models spend relatively less on embeddings.</p>\n";
    // Recommendations as an HTML table (from the markdown generator's data).
    const auto models = standard_models();
    os << "<table><thead><tr><th>RAM</th>";
    for (const auto& m : models) os << "<th>" << m.name << "</th>";
    os << "</tr></thead><tbody>";
    for (uint64_t ram : kRamSizes) {
        os << "<tr><td>" << ram / (1ull << 30) << " GB</td>";
        for (const auto& m : models) {
            const auto fits = formats_that_fit(m, q, ram, 4096);
            const Fit* f = recommended(fits);
            os << "<td>" << (f ? f->format.type + fmt(" (%.1f GB)", static_cast<double>(f->bytes) / 1e9) : std::string("does not fit")) << "</td>";
        }
        os << "</tr>";
    }
    os << "</tbody></table>\n<p>Generated by qforge.</p></body></html>\n";
    return os.str();
}

std::string report_recommendations_markdown(const Report& r) {
    return recommendations_markdown(quality_from_report(r), kRamSizes, 4096);
}

}  // namespace qforge
