// Pascal VOC loader; see voc.h for the layout and the rules.
// Two passes: (1) OpenMP over images: read + parse the XML (tinyxml2, one document per image), decode the
// image, check <size>; (2) serial, cheap: the class list, the name -> index map, the zero-size / outside /
// clip rules in file order (so warnings come in split order). BCCD's test split (72 JPEGs of 640x480, ~4 ms
// each to decode) loads in ~0.2 s on 2 cores.
// Checked by tests/datasets/test_voc.cpp.
#include "datasets/voc.h"

#include <omp.h>
#include <tinyxml2.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <set>
#include <sstream>

#include "datasets/first_error.h"
#include "host/core/check.h"

namespace fs = std::filesystem;

namespace rf::data {

namespace {

struct RawAnnotation {
  VocAnnotation ann;
  std::string image_path;
  Image image;
};

std::string trim(const char* s) {
  if (!s) return "";
  std::string t(s);
  const auto b = t.find_first_not_of(" \t\r\n"), e = t.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : t.substr(b, e - b + 1);
}

const tinyxml2::XMLElement* child(const tinyxml2::XMLElement* e, const char* name) {
  return e ? e->FirstChildElement(name) : nullptr;
}

// A non-negative decimal number as VOC tools write it: digits, optionally '.' and digits. Nothing else
// (no sign, exponent, hex, inf/nan, spaces inside or trailing text): strtod would take "0x40" or "1e2".
bool plain_decimal(const std::string& t, double* v) {
  size_t i = 0, digits = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i, ++digits;
  if (digits == 0 || digits > 9) return false;
  if (i < t.size() && t[i] == '.') {
    ++i;
    size_t frac = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i, ++frac;
    if (frac == 0) return false;
  }
  if (i != t.size()) return false;
  *v = std::strtod(t.c_str(), nullptr);  // the grammar above is a subset of strtod's, so this is exact
  return std::isfinite(*v);
}

// The number in element `field` of `parent`; `where` names the element in messages. integer: no fraction.
double number_field(const tinyxml2::XMLElement* parent, const char* field, const std::string& file,
                    const std::string& where, std::string* text_out = nullptr, bool integer = false) {
  const tinyxml2::XMLElement* e = child(parent, field);
  RF_CHECK(e, "{}: {} has no <{}> field", file, where, field);
  const std::string t = trim(e->GetText());
  RF_CHECK(!t.empty(), "{}: {} <{}> is empty, expected a number", file, where, field);
  double v = 0;
  RF_CHECK(plain_decimal(t, &v) && (!integer || t.find('.') == std::string::npos),
           "{}: {} <{}> is '{}', expected a number: a non-negative {} (digits only{}, no sign, exponent or hex)", file,
           where, field, t, integer ? "integer" : "decimal", integer ? "" : ", optionally with a '.' fraction");
  if (text_out) *text_out = t;
  return v;
}

}  // namespace

VocAnnotation parse_voc_annotation(const char* text, size_t size, const std::string& xml_path) {
  VocAnnotation a;
  a.xml = xml_path;
  tinyxml2::XMLDocument doc;
  if (doc.Parse(text, size) != tinyxml2::XML_SUCCESS)
    RF_FAIL("{}: malformed XML: {} (line {})", xml_path, doc.ErrorStr(), doc.ErrorLineNum());
  const tinyxml2::XMLElement* root = doc.FirstChildElement("annotation");
  RF_CHECK(root, "{}: no <annotation> root element (found <{}>)", xml_path,
           doc.RootElement() ? doc.RootElement()->Name() : "nothing");
  if (const tinyxml2::XMLElement* size_e = child(root, "size")) {
    const double w = number_field(size_e, "width", xml_path, "<size>", nullptr, true);
    const double h = number_field(size_e, "height", xml_path, "<size>", nullptr, true);
    RF_CHECK(w < 1e6 && h < 1e6, "{}: <size> is {}x{} (width x height), expected integers below 1,000,000", xml_path,
             w, h);
    a.size_w = int(w);
    a.size_h = int(h);
  }
  if (const tinyxml2::XMLElement* fn = child(root, "filename")) a.filename = trim(fn->GetText());
  int k = 0;
  for (const tinyxml2::XMLElement* o = root->FirstChildElement("object"); o; o = o->NextSiblingElement("object"), ++k) {
    VocObject r;
    const std::string where = fmt::format("object {}", k);
    const tinyxml2::XMLElement* name = child(o, "name");
    RF_CHECK(name, "{}: {} has no <name> field", xml_path, where);
    r.name = trim(name->GetText());
    RF_CHECK(!r.name.empty(), "{}: {} has an empty <name>", xml_path, where);
    const tinyxml2::XMLElement* bb = child(o, "bndbox");
    RF_CHECK(bb, "{}: {} ({}) has no <bndbox> field", xml_path, where, r.name);
    static const char* kCorner[4] = {"xmin", "ymin", "xmax", "ymax"};
    for (int c = 0; c < 4; ++c)
      r.c[c] = number_field(bb, kCorner[c], xml_path, where + " (" + r.name + ") <bndbox>", &r.text[c]);
    for (int c = 0; c < 2; ++c)
      RF_CHECK(r.c[c] <= r.c[c + 2],
               "{}: {} ({}) <bndbox> <{}> is {} but <{}> is {}: an inverted box (expected {} <= {})", xml_path, where,
               r.name, kCorner[c], r.text[c], kCorner[c + 2], r.text[c + 2], kCorner[c], kCorner[c + 2]);
    if (child(o, "difficult")) {
      const double d = number_field(o, "difficult", xml_path, where + " (" + r.name + ")", nullptr, true);
      RF_CHECK(d == 0 || d == 1, "{}: {} ({}) <difficult> is {}, expected 0 or 1", xml_path, where, r.name, d);
      r.difficult = d == 1;
    }
    a.objects.push_back(std::move(r));
  }
  return a;
}

std::vector<std::string> parse_voc_list(const std::string& text, const std::string& list, const std::string& root) {
  std::vector<std::string> ids;
  std::map<std::string, int> seen;
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    std::istringstream ls(line);
    std::string id;
    if (!(ls >> id)) continue;
    (void)resolve_list_path((fs::path(root) / "Annotations").string(), id + ".xml", list, line_no, "image id");
    (void)resolve_list_path((fs::path(root) / "JPEGImages").string(), id + ".jpg", list, line_no, "image id");
    const auto it = seen.emplace(id, line_no);
    RF_CHECK(it.second, "VOC: {} line {}: image id '{}' is listed twice (lines {} and {}); each image once", list,
             line_no, id, it.first->second, line_no);
    ids.push_back(id);
  }
  RF_CHECK(!ids.empty(), "VOC: split list {} holds no image ids", list);
  return ids;
}

namespace {

std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  RF_CHECK(f.good(), "VOC: missing {} {}", what, path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

RawAnnotation parse_annotation(const std::string& xml_path) {
  const std::string text = read_text_file(xml_path, "annotation file");
  RawAnnotation a;
  a.ann = parse_voc_annotation(text.data(), text.size(), xml_path);
  return a;
}

std::string find_image(const fs::path& dir, const std::string& id, const std::string& filename_field,
                       const std::string& xml) {
  for (const char* ext : {".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"}) {
    const fs::path p = dir / (id + ext);
    if (fs::is_regular_file(p)) return p.string();
  }
  if (!filename_field.empty()) {
    const fs::path f = fs::path(filename_field);
    const fs::path n = f.lexically_normal();
    RF_CHECK(!f.is_absolute() && !f.has_root_directory() && !n.empty() && *n.begin() != "..",
             "VOC: {}: <filename> '{}' is not a path inside {} (absolute or \"..\")", xml, filename_field, dir.string());
    if (fs::is_regular_file(dir / n)) return (dir / n).string();
  }
  RF_FAIL("VOC: missing image file {} for annotation {} (also tried .jpeg/.png{})", (dir / (id + ".jpg")).string(),
          xml, filename_field.empty() ? "" : " and <filename> " + filename_field);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Where a class name was first seen: split, file, object index, count.
struct NameSeen {
  std::string split, xml;
  int object = 0;
  int64_t count = 0;
};

}  // namespace

std::vector<std::string> voc_class_names(const std::string& root, const std::string& split) {
  const fs::path r(root);
  const fs::path list_file = r / "classes.txt";
  if (fs::is_regular_file(list_file)) {
    std::istringstream in(read_text_file(list_file.string(), "class list"));
    std::vector<std::string> names;
    std::set<std::string> seen;
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      const std::string n = trim(line.c_str());
      if (n.empty() || n[0] == '#') continue;
      RF_CHECK(seen.insert(n).second, "VOC: {} line {}: class '{}' is listed twice", list_file.string(), line_no, n);
      names.push_back(n);
    }
    RF_CHECK(!names.empty(), "VOC: {} lists no class names (one per line)", list_file.string());
    return names;
  }
  // No list: the names found in the annotations of the splits train / val / test (and `split`). A name seen in
  // only one split while others exist is a typo until told otherwise (classes.txt); so are two names that
  // differ only in case.
  std::vector<std::string> splits = {split};
  for (const char* s : {"train", "val", "test"})
    if (s != split && fs::is_regular_file(r / "ImageSets" / "Main" / (std::string(s) + ".txt"))) splits.push_back(s);
  std::map<std::string, std::vector<NameSeen>> where;  // name -> per split where it occurs
  for (const std::string& sp : splits) {
    const fs::path list = r / "ImageSets" / "Main" / (sp + ".txt");
    const std::vector<std::string> ids =
        parse_voc_list(read_text_file(list.string(), "split list"), list.string(), root);
    std::map<std::string, NameSeen> here;
    for (const std::string& id : ids) {
      const std::string xml = (r / "Annotations" / (id + ".xml")).string();
      const std::string text = read_text_file(xml, "annotation file");
      const VocAnnotation a = parse_voc_annotation(text.data(), text.size(), xml);
      for (size_t k = 0; k < a.objects.size(); ++k) {
        NameSeen& n = here[a.objects[k].name];
        if (n.count++ == 0) n = {sp, xml, int(k), 1};
      }
    }
    for (auto& [name, seen] : here) where[name].push_back(seen);
  }
  std::vector<std::string> names;
  std::map<std::string, std::string> by_lower;
  for (const auto& [name, seen] : where) {
    const auto it = by_lower.emplace(lower(name), name);
    RF_CHECK(it.second,
             "VOC: {}: class names '{}' and '{}' differ only in case ('{}' first in {} object {}); fix the "
             "annotations, or list the classes in {}",
             root, it.first->second, name, name, seen[0].xml, seen[0].object, list_file.string());
  }
  for (const auto& [name, seen] : where) {
    if (splits.size() >= 2 && seen.size() == 1) {
      std::vector<std::string> others;
      for (const auto& [n2, s2] : where)
        if (s2.size() >= 2) others.push_back(n2);
      RF_FAIL("VOC: class '{}' occurs only in the {} split ({} object(s), first in {} object {}), in none of the "
              "other splits ({}), whose classes are [{}]: a typo? Fix the annotation, or if the class is real, list "
              "all class names (one per line) in {}",
              name, seen[0].split, seen[0].count, seen[0].xml, seen[0].object, join(splits), join(others),
              list_file.string());
    }
    names.push_back(name);
  }
  return names;
}

bool looks_like_voc(const std::string& root) {
  std::error_code ec;
  const fs::path r(root);
  return fs::is_directory(r / "Annotations", ec) && fs::is_directory(r / "JPEGImages", ec) &&
         fs::is_directory(r / "ImageSets" / "Main", ec);
}

DetDataset load_voc(const std::string& root, const std::string& split, const std::vector<std::string>& classes) {
  const fs::path r(root);
  RF_CHECK(fs::is_directory(r), "VOC: root {} is not a directory (expected JPEGImages/, Annotations/, ImageSets/Main/)",
           root);
  const fs::path list = r / "ImageSets" / "Main" / (split + ".txt");
  RF_CHECK(fs::is_regular_file(list), "VOC: missing split list {} (expected one image id per line)", list.string());
  const std::vector<std::string> ids = parse_voc_list(read_text_file(list.string(), "split list"), list.string(), root);
  {
    std::set<std::string> seen(classes.begin(), classes.end());
    RF_CHECK(seen.size() == classes.size(), "VOC: the class list [{}] has a repeated name", join(classes));
  }

  // Pass 1 (parallel): annotations and images.
  const int64_t N = int64_t(ids.size());
  std::vector<RawAnnotation> raw(ids.size());
  FirstError first_error(N);
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < N; ++i) {
    try {
      const std::string& id = ids[size_t(i)];
      RawAnnotation a = parse_annotation((r / "Annotations" / (id + ".xml")).string());
      a.image_path = find_image(r / "JPEGImages", id, a.ann.filename, a.ann.xml);
      a.image = decode_image_file(a.image_path);
      if (a.ann.size_w > 0 && a.ann.size_h > 0)
        RF_CHECK(a.ann.size_w == a.image.W && a.ann.size_h == a.image.H,
                 "VOC: {} gives <size> {}x{} (width x height) but image {} decodes to {}x{}", a.ann.xml, a.ann.size_w,
                 a.ann.size_h, a.image_path, a.image.W, a.image.H);
      raw[size_t(i)] = std::move(a);
    } catch (const std::bad_alloc&) {
      first_error.record(i, [&] {
        return fmt::format("VOC: out of memory loading image id '{}' of {}", ids[size_t(i)], list.string());
      });
    } catch (const std::exception& e) {
      first_error.record(i, [&] { return std::string(e.what()); });
    }
  }
  first_error.rethrow();

  // Pass 2 (serial): classes and box rules.
  DetDataset d;
  d.name = "voc:" + r.filename().string() + "/" + split;
  if (d.name == "voc:/" + split) d.name = "voc:" + r.parent_path().filename().string() + "/" + split;
  d.classes = classes.empty() ? voc_class_names(root, split) : classes;
  RF_CHECK(!d.classes.empty(), "VOC: split {} of {} has no objects, so no class names (give a class list in {})", split,
           root, (r / "classes.txt").string());
  d.ids = ids;
  d.images.resize(size_t(N));
  d.boxes.resize(size_t(N));
  for (int64_t i = 0; i < N; ++i) {
    RawAnnotation& a = raw[size_t(i)];
    const std::string& xml = a.ann.xml;
    for (size_t k = 0; k < a.ann.objects.size(); ++k) {
      const VocObject& o = a.ann.objects[k];
      const auto it = std::find(d.classes.begin(), d.classes.end(), o.name);
      RF_CHECK(it != d.classes.end(),
               "VOC: {}: object {} has class name '{}', expected one of [{}] (a typo? the class list is {})", xml, k,
               o.name, join(d.classes),
               classes.empty() ? (fs::is_regular_file(r / "classes.txt") ? (r / "classes.txt").string()
                                                                         : std::string("the names of the splits"))
                               : std::string("the one given"));
      const std::string box = fmt::format("xmin={} ymin={} xmax={} ymax={}", o.text[0], o.text[1], o.text[2], o.text[3]);
      // VOC corners are 1-based inclusive, so xmax may equal the width; a corner past the image is an error
      // (the annotation does not belong to this image). xmin = 0 (0-based writers) is clipped, with a warning.
      RF_CHECK(o.c[2] <= double(a.image.W) && o.c[3] <= double(a.image.H),
               "VOC: {}: object {} ({}) <bndbox> {} lies outside the {}x{} (width x height) image {} ({} > {})", xml,
               k, o.name, box, a.image.W, a.image.H, a.image_path, o.c[2] > double(a.image.W) ? "xmax" : "ymax",
               o.c[2] > double(a.image.W) ? a.image.W : a.image.H);
      if (o.c[2] <= o.c[0] || o.c[3] <= o.c[1]) {  // xmin == xmax or ymin == ymax (inverted boxes are errors)
        d.warnings.push_back(fmt::format("{}: object {} ({}) has a zero-size box {}; dropped", xml, k, o.name, box));
        continue;
      }
      BoxAnn b;
      b.x0 = float(o.c[0] - 1);
      b.y0 = float(o.c[1] - 1);
      b.x1 = float(o.c[2]);
      b.y1 = float(o.c[3]);
      b.cls = int32_t(it - d.classes.begin());
      b.difficult = o.difficult;
      if (b.x0 < 0 || b.y0 < 0) {
        b.x0 = std::max(b.x0, 0.f);
        b.y0 = std::max(b.y0, 0.f);
        d.warnings.push_back(fmt::format("{}: object {} ({}) box {} has a 0 corner (VOC corners start at 1); "
                                         "clipped to x [{}, {}) y [{}, {})",
                                         xml, k, o.name, box, b.x0, b.x1, b.y0, b.y1));
      }
      if (!(b.x1 > b.x0 && b.y1 > b.y0)) continue;  // unreachable after the checks above; kept as a guard
      d.boxes[size_t(i)].push_back(b);
    }
    d.images[size_t(i)] = std::move(a.image);
  }
  print_warnings(d.warnings);
  return d;
}

}  // namespace rf::data
