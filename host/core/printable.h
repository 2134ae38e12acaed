// Text from files, folder names and configs shown on a terminal: control characters (ESC of a terminal
// escape sequence, CR, BEL, ...) and bytes that are not valid UTF-8 are written as \xNN, a backslash as \\,
// so a hostile name can neither recolour nor overwrite what the terminal shows. Valid UTF-8 (accented class
// names) passes unchanged. Header-only: the config parser (fuzzed from a few files) uses it too.
#pragma once
#include <cstdio>
#include <string>

namespace rf {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if it is not one (overlong forms,
// surrogates and code points above U+10FFFF are invalid, as in nlohmann::json's strict decoder).
inline size_t utf8_sequence_length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  unsigned min;
  unsigned cp;
  if ((c & 0xE0) == 0xC0) n = 2, min = 0x80, cp = c & 0x1Fu;
  else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800, cp = c & 0x0Fu;
  else if ((c & 0xF8) == 0xF0) n = 4, min = 0x10000, cp = c & 0x07u;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// `s` with control characters, DEL, backslashes and invalid UTF-8 escaped (see above). Newlines and tabs are
// escaped too: one name stays on one line.
inline std::string printable(const std::string& s, bool escape_backslash = true) {
  std::string out;
  out.reserve(s.size());
  char buf[8];
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\\' && escape_backslash) {
      out += "\\\\";
      ++i;
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
    } else if (c < 0x80) {
      out += char(c);
      ++i;
    } else if (size_t n = utf8_sequence_length(s, i)) {
      // C1 controls (U+0080..U+009F, e.g. the 8-bit CSI) act like ESC on some terminals.
      if (n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i + 1]));
        out += buf;
      } else {
        out.append(s, i, n);
      }
      i += n;
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
    }
  }
  return out;
}

// Multi-line text (an error message) made printable line by line: newlines are kept, all else as printable()
// except backslashes (a message may already hold printable() text; it is not escaped twice).
inline std::string printable_lines(const std::string& s) {
  std::string out, line;
  for (char c : s) {
    if (c == '\n') {
      out += printable(line, false) + "\n";
      line.clear();
    } else {
      line += c;
    }
  }
  return out + printable(line, false);
}

}  // namespace rf
