#include "qforge/advise.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "qforge/error.hpp"

namespace qforge {

QualityTable builtin_quality() {
    QualityTable t;
    t.note = "mean KL divergence measured by qforge on tiny-llama-23m (TinyStories, ctx 512, 40 chunks); relative ranking only";
    t.entries = {{"F16", 16.0046, 0.0},        {"Q8_0", 8.5068, 0.000150},   {"Q6_K", 6.5698, 0.000853},
                 {"Q5_K_M", 5.6887, 0.002007}, {"Q5_K_S", 5.6042, 0.002112}, {"Q5_1", 6.0586, 0.002009},
                 {"Q5_0", 5.6042, 0.002537},   {"Q4_K_M", 4.8594, 0.006193}, {"Q4_K_S", 4.7181, 0.006477},
                 {"Q4_1", 5.1498, 0.007700},   {"Q4_0", 4.6954, 0.009928},   {"IQ4_NL", 4.6954, 0.007618},
                 {"IQ4_XS", 4.4682, 0.007904}, {"Q3_K_L", 4.3624, 0.016652}, {"Q3_K_M", 4.0670, 0.018967},
                 {"Q3_K_S", 3.7297, 0.028882}, {"Q2_K", 3.2405, 0.085158}};
    return t;
}

QualityTable quality_from_report(const Report& r) {
    QualityTable t;
    t.note = "mean KL divergence measured by qforge report on " + r.source + " (" + r.machine + ")";
    for (const auto& row : r.rows)
        if (!row.is_base) t.entries.push_back({row.type, row.bpw, row.kld});
    return t;
}

std::vector<ModelSpec> standard_models() {
    return {{"1B", 1.24e9, 16, 512},  {"3B", 3.21e9, 28, 1024},  {"8B", 8.03e9, 32, 1024},
            {"14B", 14.8e9, 48, 1024}, {"32B", 32.8e9, 64, 1024}, {"70B", 70.6e9, 80, 1024}};
}

ModelSpec spec_for_params(double params) {
    const auto all = standard_models();
    ModelSpec best = all.front();
    for (const auto& s : all)
        if (std::fabs(std::log(s.params / params)) < std::fabs(std::log(best.params / params))) best = s;
    char name[32];
    std::snprintf(name, sizeof name, params >= 1e9 ? "%.3gB" : "%.3gM", params >= 1e9 ? params / 1e9 : params / 1e6);
    best.name = name;
    best.params = params;
    return best;
}

uint64_t usable_memory(uint64_t ram) {
    const uint64_t keep = std::max<uint64_t>(3ull << 29, ram * 15 / 100);
    return ram > keep ? ram - keep : 0;
}

uint64_t model_memory(const ModelSpec& spec, double bpw, int n_ctx) {
    const double weights = spec.params * bpw / 8.0;
    const double kv = 2.0 * spec.n_layer * static_cast<double>(n_ctx) * spec.kv_dim * 2.0;
    const double buffers = 0.03 * weights + 256.0 * (1 << 20);
    return static_cast<uint64_t>(weights + kv + buffers);
}

std::vector<Fit> formats_that_fit(const ModelSpec& spec, const QualityTable& q, uint64_t ram, int n_ctx) {
    std::vector<Fit> fits;
    const uint64_t budget = usable_memory(ram);
    for (const auto& e : q.entries) {
        const uint64_t need = model_memory(spec, e.bpw, n_ctx);
        if (need <= budget) fits.push_back({e, need});
    }
    std::sort(fits.begin(), fits.end(), [](const Fit& a, const Fit& b) {
        return a.format.kld < b.format.kld || (a.format.kld == b.format.kld && a.bytes < b.bytes);
    });
    return fits;
}

const Fit* recommended(const std::vector<Fit>& fits) {
    const Fit* best = nullptr;
    for (const auto& f : fits)
        if (f.format.kld <= kLosslessKld && (!best || f.bytes < best->bytes)) best = &f;
    return best ? best : (fits.empty() ? nullptr : &fits.front());
}

std::string recommendations_markdown(const QualityTable& q, const std::vector<uint64_t>& rams, int n_ctx) {
    std::ostringstream os;
    const auto models = standard_models();
    os << "| RAM |";
    for (const auto& m : models) os << " " << m.name << " |";
    os << "\n|---|";
    for (size_t i = 0; i < models.size(); ++i) os << "---|";
    os << "\n";
    for (uint64_t ram : rams) {
        os << "| " << ram / (1ull << 30) << " GB |";
        for (const auto& m : models) {
            const auto fits = formats_that_fit(m, q, ram, n_ctx);
            if (const Fit* f = recommended(fits)) {
                char buf[64];
                std::snprintf(buf, sizeof buf, " %s (%.1f GB) |", f->format.type.c_str(), static_cast<double>(f->bytes) / 1e9);
                os << buf;
            } else {
                os << " does not fit |";
            }
        }
        os << "\n";
    }
    os << "\nContext " << n_ctx << " tokens, f16 KV cache; the OS keeps max(1.5 GiB, 15%) of RAM. Recommended: the smallest format "
       << "with mean KLD <= " << kLosslessKld << " that fits, else the lowest KLD that fits. Quality: " << q.note << ".\n";
    return os.str();
}

namespace {
double parse_number_with_suffix(const std::string& s, const char* what, char& suffix) {
    size_t pos = 0;
    double v;
    try {
        v = std::stod(s, &pos);
    } catch (...) {
        throw_usage(std::string(what) + ": cannot read '" + s + "'");
    }
    std::string rest = s.substr(pos);
    while (!rest.empty() && (rest.back() == 'B' || rest.back() == 'b' || rest.back() == 'i') && rest.size() > 1) rest.pop_back();
    suffix = rest.empty() ? 0 : static_cast<char>(std::toupper(static_cast<unsigned char>(rest[0])));
    if (rest.size() > 1 || v < 0 || !std::isfinite(v)) throw_usage(std::string(what) + ": cannot read '" + s + "'");
    return v;
}
}  // namespace

uint64_t parse_size(const std::string& s) {
    char suf;
    const double v = parse_number_with_suffix(s, "--ram", suf);
    double mult = 1;
    switch (suf) {
        case 0: mult = 1ull << 30; break;  // a plain number means GB
        case 'K': mult = 1ull << 10; break;
        case 'M': mult = 1ull << 20; break;
        case 'G': mult = 1ull << 30; break;
        case 'T': mult = 1ull << 40; break;
        default: throw_usage("--ram: unknown unit in '" + s + "' (use M, G or T)");
    }
    return static_cast<uint64_t>(v * mult);
}

double parse_params(const std::string& s) {
    char suf;
    // "7B" means 7 billion here, so read the B as a unit, not a byte suffix.
    std::string t = s;
    double mult = 1;
    if (!t.empty()) {
        const char last = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
        if (last == 'B') mult = 1e9, t.pop_back();
        else if (last == 'M') mult = 1e6, t.pop_back();
        else if (last == 'K') mult = 1e3, t.pop_back();
        else if (last == 'T') mult = 1e12, t.pop_back();
    }
    const double v = parse_number_with_suffix(t, "--params", suf);
    if (suf) throw_usage("--params: cannot read '" + s + "' (e.g. 7B, 1.1B, 500M)");
    if (v * mult < 1e5) throw_usage("--params: '" + s + "' is too small");
    return v * mult;
}

}  // namespace qforge
