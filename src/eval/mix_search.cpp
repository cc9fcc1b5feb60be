#include "qforge/mix_search.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <queue>
#include <sstream>

#include "qforge/error.hpp"
#include "qforge/output_file.hpp"
#include "qforge/perplexity.hpp"
#include "qforge/quantize.hpp"

namespace qforge {

namespace {

uint64_t bytes_as(GgmlType t, const WeightView& w) {
    const auto& tr = type_traits(t);
    return static_cast<uint64_t>(w.rows()) * static_cast<uint64_t>(w.cols() / tr.block_size) * tr.type_size;
}

struct Option {
    GgmlType type;
    uint64_t bytes;
    double kld;
};

}  // namespace

MixResult search_mix(Model& model, const MixSearchOptions& opt) {
    const auto slots = model.matrices();
    for (const auto& [name, view] : slots)
        if (view->type != GgmlType::F32 && view->type != GgmlType::F16 && view->type != GgmlType::BF16)
            throw_usage("--target-bpw/--target-size need a model in F32, F16 or BF16; " + name + " is " + type_traits(view->type).name);
    MixResult res;
    res.n_params = model.n_params();
    uint64_t matrix_bytes_now = 0;
    for (const auto& [name, view] : slots) matrix_bytes_now += view->row_bytes() * static_cast<uint64_t>(view->rows());
    res.fixed_bytes = model.weight_bytes() - matrix_bytes_now;

    // The measurements' key: the model, the calibration tokens and the candidates.
    std::ostringstream key;
    key << "qforge-mix-measurements 1 " << model.n_params() << " " << opt.calib_tokens.size() << " " << opt.n_ctx << " " << opt.n_chunks << " "
        << (opt.imatrix ? opt.imatrix->entries.size() : 0);
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the tokens
    for (int32_t t : opt.calib_tokens) h = (h ^ static_cast<uint32_t>(t)) * 1099511628211ull;
    key << " " << h;
    for (GgmlType t : opt.candidates) key << " " << type_traits(t).name;
    std::map<std::pair<std::string, GgmlType>, double> cached;
    if (!opt.measurements_file.empty()) {
        std::ifstream in(opt.measurements_file);
        std::string line;
        if (in && std::getline(in, line) && line == key.str()) {
            std::string name, type;
            double kld;
            while (in >> name >> type >> kld)
                if (const TypeTraits* tt = find_type_by_name(type)) cached[{name, tt->type}] = kld;
        }
    }
    std::ostringstream measured;
    measured << key.str() << "\n";

    PerplexityOptions po;
    po.n_ctx = opt.n_ctx;
    po.n_chunks = opt.n_chunks;
    po.batch = opt.n_ctx;
    po.threads = opt.threads;
    po.cache_type = KvCacheType::F32;
    if (static_cast<int64_t>(opt.calib_tokens.size()) < 2 * static_cast<int64_t>(opt.n_ctx))
        throw_usage("the calibration text is too short: " + std::to_string(opt.calib_tokens.size()) + " tokens, need at least " +
                    std::to_string(2 * opt.n_ctx));
    KldBase base;
    bool have_base = false;

    // Candidates each matrix can take (rows a multiple of the type's block).
    std::vector<std::vector<Option>> options(slots.size());
    int total = 0;
    for (size_t i = 0; i < slots.size(); ++i)
        for (GgmlType t : opt.candidates)
            if (slots[i].second->cols() % type_traits(t).block_size == 0) ++total;
    int done = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
        WeightView& w = *slots[i].second;
        const WeightView keep = w;
        std::vector<float> f(static_cast<size_t>(w.rows() * w.cols()));
        dequantize(w.type, w.data, f.data(), static_cast<int64_t>(f.size()));
        std::span<const float> im;
        if (opt.imatrix) {
            auto it = opt.imatrix->entries.find(slots[i].first);
            if (it != opt.imatrix->entries.end() && static_cast<int64_t>(it->second.size()) == w.cols()) im = it->second;
        }
        for (GgmlType t : opt.candidates) {
            if (w.cols() % type_traits(t).block_size != 0) continue;
            if (type_traits(t).needs_imatrix && im.empty()) continue;
            double kld;
            if (auto c = cached.find({slots[i].first, t}); c != cached.end()) {
                kld = c->second;
            } else {
                if (!have_base) {
                    perplexity(model, opt.calib_tokens, po, nullptr, &base);
                    have_base = true;
                }
                const auto q = quantize_tensor(f.data(), w.rows(), w.cols(), t, im, opt.threads > 0 ? opt.threads : 1);
                w.type = t;
                w.data = q.data();
                w.x8 = nullptr;
                const auto r = perplexity(model, base.tokens, po, &base);
                w = keep;
                kld = r.kld ? r.kld->mean : 0.0;
                ++res.evaluations;
            }
            measured << slots[i].first << " " << type_traits(t).name << " " << kld << "\n";
            options[i].push_back({t, bytes_as(t, keep), kld});
            if (opt.progress) opt.progress(++done, total);
        }
        if (options[i].empty()) throw_usage(slots[i].first + ": none of the candidate types fits rows of " + std::to_string(w.cols()));
        std::sort(options[i].begin(), options[i].end(), [](const Option& a, const Option& b) { return a.bytes < b.bytes || (a.bytes == b.bytes && a.kld < b.kld); });
        // Keep the lower convex hull of (bytes, divergence): a larger type only where it pays.
        std::vector<Option> hull;
        for (const Option& o : options[i]) {
            if (!hull.empty() && o.kld >= hull.back().kld) continue;
            while (hull.size() >= 2) {
                const Option &a = hull[hull.size() - 2], &b = hull.back();
                const double s_ab = (a.kld - b.kld) / static_cast<double>(b.bytes - a.bytes), s_bo = (b.kld - o.kld) / static_cast<double>(o.bytes - b.bytes);
                if (s_bo >= s_ab) hull.pop_back();
                else break;
            }
            hull.push_back(o);
        }
        options[i] = std::move(hull);
    }

    if (!opt.measurements_file.empty() && res.evaluations > 0) {
        const std::string text = measured.str();
        OutputFile out(opt.measurements_file);
        out.write(text.data(), text.size());
        out.commit();
    }

    // Start from the smallest option everywhere, then take the upgrades that remove the most
    // divergence per byte while they fit.
    std::vector<size_t> at(slots.size(), 0);
    uint64_t used = res.fixed_bytes;
    for (const auto& o : options) used += o[0].bytes;
    if (used > opt.budget_bytes)
        throw_usage("the size budget (" + std::to_string(opt.budget_bytes) + " bytes) is below the smallest mix of the candidate types (" +
                    std::to_string(used) + " bytes)");
    using Up = std::pair<double, size_t>;  // divergence saved per byte, slot
    std::priority_queue<Up> q;
    auto push = [&](size_t i) {
        if (at[i] + 1 >= options[i].size()) return;
        const Option &a = options[i][at[i]], &b = options[i][at[i] + 1];
        q.push({(a.kld - b.kld) / static_cast<double>(b.bytes - a.bytes), i});
    };
    for (size_t i = 0; i < slots.size(); ++i) push(i);
    while (!q.empty()) {
        const size_t i = q.top().second;
        q.pop();
        const Option &a = options[i][at[i]], &b = options[i][at[i] + 1];
        if (used - a.bytes + b.bytes > opt.budget_bytes) continue;  // does not fit; smaller upgrades still may
        used = used - a.bytes + b.bytes;
        ++at[i];
        push(i);
    }
    for (size_t i = 0; i < slots.size(); ++i) {
        const Option& o = options[i][at[i]];
        res.choices.push_back({slots[i].first, o.type, o.bytes, o.kld});
        res.matrix_bytes += o.bytes;
        res.predicted_kld += o.kld;
    }
    return res;
}

std::vector<std::pair<std::string, GgmlType>> mix_tensor_types(const MixResult& r) {
    std::vector<std::pair<std::string, GgmlType>> out;
    for (const auto& c : r.choices) {
        std::string re = "^";
        for (char ch : c.name) {
            if (ch == '.') re += '\\';
            re += ch;
        }
        out.emplace_back(re + "$", c.type);
    }
    return out;
}

std::string mix_recipe_text(const MixResult& r) {
    std::ostringstream s;
    s << "# qforge mix: " << r.choices.size() << " matrices, " << r.matrix_bytes + r.fixed_bytes << " bytes of tensors ("
      << 8.0 * static_cast<double>(r.matrix_bytes + r.fixed_bytes) / static_cast<double>(std::max<int64_t>(r.n_params, 1))
      << " bits per weight); use with quantize --tensor-type-file\n";
    for (const auto& [re, type] : mix_tensor_types(r)) s << re << "=" << type_traits(type).name << "\n";
    return s.str();
}

std::vector<std::pair<std::string, GgmlType>> load_tensor_type_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw_bad_input(path, "cannot open the tensor type file");
    std::vector<std::pair<std::string, GgmlType>> out;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        const auto eq = line.rfind('=');
        const TypeTraits* t = eq == std::string::npos ? nullptr : find_type_by_name(line.substr(eq + 1));
        if (eq == std::string::npos || eq == 0 || !t || t->internal)
            throw_bad_input(path, "line " + std::to_string(n) + ": expected REGEX=TYPE, got '" + line + "'");
        out.emplace_back(line.substr(0, eq), t->type);
    }
    return out;
}

uint64_t parse_target_size(const std::string& s) {
    size_t pos = 0;
    double v = 0;
    try {
        v = std::stod(s, &pos);
    } catch (const std::exception&) {
        throw_usage("expected a size such as 14.5M, 2G or a byte count, got '" + s + "'");
    }
    std::string unit = s.substr(pos);
    for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (!unit.empty() && unit.back() == 'I') unit.pop_back();
    double mul = 1;
    if (unit == "K") mul = 1024.0;
    else if (unit == "M") mul = 1024.0 * 1024;
    else if (unit == "G") mul = 1024.0 * 1024 * 1024;
    else if (!unit.empty()) throw_usage("expected a size such as 14.5M, 2G or a byte count, got '" + s + "'");
    if (!(v > 0) || !std::isfinite(v)) throw_usage("the size must be positive, got '" + s + "'");
    return static_cast<uint64_t>(v * mul);
}

}  // namespace qforge
