// Small string helpers shared by option and name parsing.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace qforge {

inline char ascii_lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

inline std::string to_lower(std::string_view s) {
    std::string r(s);
    for (auto& c : r) c = ascii_lower(c);
    return r;
}

}  // namespace qforge
