// Pascal VOC loader: a small VOC tree written by each test (coordinates, classes, difficult, warnings for
// zero-size / partly / entirely outside boxes, every error case), and the shared BCCD archive when present
// (split sizes, classes, exactly the two known zero-size boxes, total box count, load time).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "datasets/source.h"
#include "datasets/voc.h"
#include "ds_testing.h"

using namespace rf::data;
using namespace rf::testing;

namespace {

struct Obj {
  std::string name, xmin, ymin, xmax, ymax;
  std::string difficult = "0";
};

std::string xml_of(const std::string& id, int W, int H, const std::vector<Obj>& objs) {
  std::string s = "<annotation>\n  <folder>JPEGImages</folder>\n  <filename>" + id + ".jpg</filename>\n";
  if (W >= 0) s += "  <size><width>" + std::to_string(W) + "</width><height>" + std::to_string(H) +
                   "</height><depth>3</depth></size>\n";
  for (const Obj& o : objs) {
    s += "  <object>\n    <name>" + o.name + "</name>\n    <difficult>" + o.difficult + "</difficult>\n    <bndbox>";
    if (!o.xmin.empty()) s += "<xmin>" + o.xmin + "</xmin>";
    if (!o.ymin.empty()) s += "<ymin>" + o.ymin + "</ymin>";
    if (!o.xmax.empty()) s += "<xmax>" + o.xmax + "</xmax>";
    if (!o.ymax.empty()) s += "<ymax>" + o.ymax + "</ymax>";
    s += "</bndbox>\n  </object>\n";
  }
  return s + "</annotation>\n";
}

// A VOC tree under dir: images of W x H (a gradient, so decoding is checkable), one XML each.
struct VocTree {
  std::string root;
  VocTree(const std::string& dir) : root(dir) {
    std::filesystem::create_directories(root + "/JPEGImages");
    std::filesystem::create_directories(root + "/Annotations");
    std::filesystem::create_directories(root + "/ImageSets/Main");
  }
  void image(const std::string& id, int W, int H) {
    std::vector<uint8_t> px(size_t(W) * size_t(H) * 3);
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < 3; ++c) px[(size_t(y) * size_t(W) + size_t(x)) * 3 + size_t(c)] = uint8_t(40 + 3 * x + 2 * y + 30 * c);
    write_jpeg_file(root + "/JPEGImages/" + id + ".jpg", px.data(), H, W, 3, 95);
  }
  void ann(const std::string& id, const std::string& xml) { write_text(root + "/Annotations/" + id + ".xml", xml); }
  void split(const std::string& name, const std::vector<std::string>& ids) {
    std::string s;
    for (const auto& id : ids) s += id + "\n";
    write_text(root + "/ImageSets/Main/" + name + ".txt", s);
  }
  // One good image "a" (40x30) with boxes of classes cat and dog, the split "s" = {a} + extra ids.
  void basic(const std::vector<Obj>& objs, int size_w = 40, int size_h = 30) {
    image("a", 40, 30);
    ann("a", xml_of("a", size_w, size_h, objs));
    split("s", {"a"});
  }
  // basic(objs, ...), then the message of the rf::Error loading split "s" throws.
  std::string error_with(const std::vector<Obj>& objs, int size_w = 40, int size_h = 30) {
    basic(objs, size_w, size_h);
    return error_of([&] { load_voc(root, "s"); });
  }
};

// Each case: the objects of a.xml (basic()) and what the error of loading split "s" must say.
struct BadObjects {
  std::vector<Obj> objs;
  std::vector<std::string> needles;
};
void expect_errors(VocTree& t, const std::vector<BadObjects>& bad) {
  for (const BadObjects& b : bad) {
    const std::string m = t.error_with(b.objs);
    for (const std::string& n : b.needles) EXPECT_TRUE(contains(m, n)) << m;
  }
}

}  // namespace

TEST(Voc, ParsesBoxesClassesAndDifficult) {
  TempDir tmp;
  VocTree t(tmp / "voc");
  t.image("a", 40, 30);
  t.image("b", 24, 20);
  t.ann("a", xml_of("a", 40, 30, {{"dog", "1", "2", "10", "12"}, {"cat", "5.5", "6", "40", "30", "1"}}));
  t.ann("b", xml_of("b", 24, 20, {{"dog", "3", "4", "24", "20"}}));
  t.split("s", {"a", "", "b  1"});  // blank line skipped, extra tokens ignored
  const DetDataset d = load_voc(t.root, "s");
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d.ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(d.warnings.empty());
  EXPECT_EQ(d.images[0].W, 40);
  EXPECT_EQ(d.images[0].H, 30);
  EXPECT_EQ(d.images[1].W, 24);
  EXPECT_NEAR(d.images[0].hwc[(5 * 40 + 7) * 3 + 1], 40 + 21 + 10 + 30, 6);  // pixel (x=7, y=5), G
  ASSERT_EQ(d.boxes[0].size(), 2u);
  const BoxAnn& b = d.boxes[0][0];
  EXPECT_EQ(b.cls, 1);
  EXPECT_FLOAT_EQ(b.x0, 0);  // 1-based inclusive -> continuous
  EXPECT_FLOAT_EQ(b.y0, 1);
  EXPECT_FLOAT_EQ(b.x1, 10);
  EXPECT_FLOAT_EQ(b.y1, 12);
  EXPECT_FALSE(b.difficult);
  EXPECT_EQ(d.boxes[0][1].cls, 0);
  EXPECT_FLOAT_EQ(d.boxes[0][1].x0, 4.5f);
  EXPECT_FLOAT_EQ(d.boxes[0][1].x1, 40);
  EXPECT_TRUE(d.boxes[0][1].difficult);
  EXPECT_FLOAT_EQ(d.boxes[1][0].y1, 20);
  EXPECT_NO_THROW(d.validate());
  // A given class list fixes the indices.
  const DetDataset e = load_voc(t.root, "s", {"dog", "cat", "bird"});
  EXPECT_EQ(e.boxes[0][0].cls, 0);
  EXPECT_EQ(e.boxes[0][1].cls, 1);
  // Same content, same hash; the hash sees the boxes.
  EXPECT_EQ(load_voc(t.root, "s").hash_hex(), d.hash_hex());
  EXPECT_NE(e.content_hash(), d.content_hash());
}

TEST(Voc, ZeroSizeBoxIsDroppedWithWarningInvertedIsAnError) {
  TempDir tmp;
  VocTree t(tmp / "voc");
  t.basic({{"cat", "5", "5", "10", "10"}, {"cat", "12", "9", "12", "9"}, {"dog", "3", "8", "3", "9"}});
  const DetDataset d = load_voc(t.root, "s");
  ASSERT_EQ(d.boxes[0].size(), 1u);
  ASSERT_EQ(d.warnings.size(), 2u);
  EXPECT_TRUE(contains(d.warnings[0], "a.xml"));
  EXPECT_TRUE(contains(d.warnings[0], "zero-size"));
  EXPECT_TRUE(contains(d.warnings[0], "xmin=12 ymin=9 xmax=12 ymax=9"));
  EXPECT_TRUE(contains(d.warnings[1], "object 2 (dog)"));
  // xmin > xmax / ymin > ymax: an error naming file, object, fields and values.
  expect_errors(t, {
      {{{"cat", "5", "5", "10", "10"}, {"dog", "3", "8", "9", "7"}},
       {"a.xml: object 1 (dog) <bndbox> <ymin> is 8 but <ymax> is 7: an inverted box"}},
      {{{"cat", "11", "5", "10", "10"}}, {"<xmin> is 11 but <xmax> is 10"}},
  });
}

TEST(Voc, BoxOutsideTheImageIsAnErrorZeroCornerIsClipped) {
  TempDir tmp;
  VocTree t(tmp / "voc");
  t.basic({{"cat", "0", "0", "40", "20"}, {"cat", "2", "2", "8", "8"}});
  const DetDataset d = load_voc(t.root, "s");
  ASSERT_EQ(d.boxes[0].size(), 2u);
  EXPECT_FLOAT_EQ(d.boxes[0][0].x0, 0);
  EXPECT_FLOAT_EQ(d.boxes[0][0].y0, 0);
  EXPECT_FLOAT_EQ(d.boxes[0][0].x1, 40);
  EXPECT_FLOAT_EQ(d.boxes[0][0].y1, 20);
  ASSERT_EQ(d.warnings.size(), 1u);
  EXPECT_TRUE(contains(d.warnings[0], "clipped"));
  EXPECT_NO_THROW(d.validate());
  expect_errors(t, {
      {{{"cat", "41", "2", "60", "9"}},
       {"a.xml: object 0 (cat) <bndbox> xmin=41 ymin=2 xmax=60 ymax=9 lies outside the 40x30", "xmax > 40"}},
      {{{"cat", "1", "2", "40", "31"}}, {"ymax > 30"}},
  });
}

TEST(Voc, NumbersMustBePlainDecimals) {
  TempDir tmp;
  VocTree t(tmp / "voc");
  for (const char* bad : {"0x40", "1e2", "-3", "12abc", "inf", "nan", "+4", "1 2", "4.", ".5", "0x1p3", "9999999999"}) {
    const std::string m = t.error_with({{"cat", "1", "2", bad, "9"}});
    EXPECT_TRUE(contains(m, "a.xml: object 0 (cat) <bndbox> <xmax> is '" + std::string(bad) + "', expected a number"))
        << bad << ": " << m;
  }
  // Leading/trailing whitespace around the number is XML layout, not part of it.
  t.basic({{"cat", " 1", "2\n", "7.5", "009"}});
  const DetDataset d = load_voc(t.root, "s");
  EXPECT_FLOAT_EQ(d.boxes[0][0].x1, 7.5f);
  EXPECT_FLOAT_EQ(d.boxes[0][0].y1, 9.f);
  // <size> and <difficult> are integers.
  t.image("a", 40, 30);
  t.ann("a", "<annotation><size><width>40.0</width><height>30</height></size></annotation>");
  std::string m = error_of([&] { load_voc(t.root, "s", {"cat"}); });
  EXPECT_TRUE(contains(m, "a.xml: <size> <width> is '40.0', expected a number: a non-negative integer")) << m;
  m = t.error_with({{"cat", "1", "2", "5", "9", "1e0"}});
  EXPECT_TRUE(contains(m, "<difficult> is '1e0'")) << m;
}

TEST(Voc, DuplicateAndEscapingIdsAreRefused) {
  TempDir tmp;
  VocTree t(tmp / "voc");
  t.basic({{"cat", "1", "1", "5", "5"}});
  t.split("d", {"a", "a"});
  std::string m = error_of([&] { load_voc(t.root, "d"); });
  EXPECT_TRUE(contains(m, "d.txt line 2: image id 'a' is listed twice (lines 1 and 2)")) << m;
  t.split("e", {"a", "../../../etc/passwd"});
  m = error_of([&] { load_voc(t.root, "e"); });
  EXPECT_TRUE(contains(m, "e.txt line 2: image id '../../../etc/passwd.xml' leaves the dataset root")) << m;
  t.split("f", {"/abs/a"});
  m = error_of([&] { load_voc(t.root, "f"); });
  EXPECT_TRUE(contains(m, "f.txt line 1: image id '/abs/a.xml' is an absolute path")) << m;
  // An annotation's <filename> may not leave JPEGImages/ either.
  t.ann("b", "<annotation><filename>../../secret.jpg</filename></annotation>");
  t.split("g", {"b"});
  m = error_of([&] { load_voc(t.root, "g", {"cat"}); });
  EXPECT_TRUE(contains(m, "b.xml: <filename> '../../secret.jpg' is not a path inside")) << m;
}

TEST(Voc, ClassNameTypoIsAnErrorNotANewClass) {
  TempDir tmp;
  VocTree t(tmp / "voc");
  for (const char* id : {"a", "b", "c", "d"}) t.image(id, 40, 30);
  t.ann("a", xml_of("a", 40, 30, {{"cat", "1", "1", "5", "5"}, {"dog", "1", "1", "5", "5"}}));
  t.ann("b", xml_of("b", 40, 30, {{"cat", "1", "1", "5", "5"}, {"dgo", "1", "1", "5", "5"}}));  // the typo
  t.ann("c", xml_of("c", 40, 30, {{"cat", "1", "1", "5", "5"}, {"dog", "1", "1", "5", "5"}}));
  t.ann("d", xml_of("d", 40, 30, {{"dog", "2", "2", "6", "6"}, {"cat", "1", "1", "5", "5"}}));
  t.split("train", {"a", "b"});
  t.split("val", {"c"});
  t.split("test", {"d"});
  std::string m = error_of([&] { load_voc(t.root, "train"); });
  EXPECT_TRUE(contains(m, "class 'dgo' occurs only in the train split (1 object(s), first in")) << m;
  EXPECT_TRUE(contains(m, "b.xml object 1")) << m;
  EXPECT_TRUE(contains(m, "whose classes are [cat, dog]")) << m;
  EXPECT_TRUE(contains(m, "classes.txt")) << m;
  // The typo in val or test: named against the train list.
  t.ann("b", xml_of("b", 40, 30, {{"cat", "1", "1", "5", "5"}}));
  t.ann("d", xml_of("d", 40, 30, {{"Dog", "2", "2", "6", "6"}}));
  m = error_of([&] { load_voc(t.root, "train"); });
  EXPECT_TRUE(contains(m, "class names 'Dog' and 'dog' differ only in case")) << m;
  t.ann("d", xml_of("d", 40, 30, {{"dog", "2", "2", "6", "6"}}));
  const DetDataset train = load_voc(t.root, "train");
  EXPECT_EQ(train.classes, (std::vector<std::string>{"cat", "dog"}));
  t.ann("c", xml_of("c", 40, 30, {{"cta", "1", "1", "5", "5"}}));
  m = error_of([&] { load_voc(t.root, "val", train.classes); });
  EXPECT_TRUE(contains(m, "c.xml: object 0 has class name 'cta', expected one of [cat, dog]")) << m;
  // classes.txt is authoritative: a class found in one split only is then fine, a name not in it is not.
  write_text(t.root + "/classes.txt", "# the classes\ncat\ndog\ncta\n");
  EXPECT_EQ(load_voc(t.root, "train").classes, (std::vector<std::string>{"cat", "dog", "cta"}));
  write_text(t.root + "/classes.txt", "cat\ndog\n");
  m = error_of([&] { load_voc(t.root, "val"); });
  EXPECT_TRUE(contains(m, "'cta', expected one of [cat, dog]")) << m;
  EXPECT_TRUE(contains(m, "classes.txt")) << m;
}

TEST(Voc, AnnotationParserFromMemory) {
  const std::string x = xml_of("a", 40, 30, {{"cat", "1", "2", "10.5", "12", "1"}});
  const VocAnnotation a = parse_voc_annotation(x.data(), x.size(), "mem.xml");
  EXPECT_EQ(a.size_w, 40);
  EXPECT_EQ(a.filename, "a.jpg");
  ASSERT_EQ(a.objects.size(), 1u);
  EXPECT_DOUBLE_EQ(a.objects[0].c[2], 10.5);
  EXPECT_TRUE(a.objects[0].difficult);
  EXPECT_TRUE(contains(error_of([&] { parse_voc_annotation(x.data(), x.size() / 2, "half.xml"); }), "half.xml: "));
  EXPECT_EQ(parse_voc_list("a\n\nb 1\n", "l.txt", "/r"), (std::vector<std::string>{"a", "b"}));
}

TEST(Voc, UnknownClassNamesFileNameAndList) {
  TempDir tmp;
  VocTree t(tmp / "voc");
  t.basic({{"cat", "1", "1", "5", "5"}, {"zebra", "1", "1", "5", "5"}});
  const std::string m = error_of([&] { load_voc(t.root, "s", {"cat", "dog"}); });
  EXPECT_TRUE(contains(m, "a.xml"));
  EXPECT_TRUE(contains(m, "'zebra'"));
  EXPECT_TRUE(contains(m, "[cat, dog]"));
  EXPECT_NO_THROW(load_voc(t.root, "s"));  // no list and a single split: zebra is a class
}

TEST(Voc, MissingFieldBadNumberBrokenXml) {
  // Each case: the annotation a.xml of image "a" (40x30, split "s" = {a}), what the error must say, and whether it
  // must name a.xml.
  const struct {
    std::string xml, needle;
    bool names_file;
  } bad[] = {
      {xml_of("a", 40, 30, {{"cat", "1", "1", "5", ""}}), "<ymax>", true},
      {"<annotation><object><name>cat</name></object></annotation>", "<bndbox>", true},
      {xml_of("a", 40, 30, {{"cat", "1", "1", "12a", "5"}}), "<xmax> is '12a', expected a number", true},
      {xml_of("a", 40, 30, {{"cat", "1", "1", "5", "5", "maybe"}}), "<difficult> is 'maybe'", false},
      {"<annotation><object><name>cat</name><bndbox><xmin>1</xmin></object></annotation>", "malformed XML", true},
  };
  for (const auto& c : bad) {
    SCOPED_TRACE(c.needle);
    TempDir tmp;
    VocTree t(tmp / "voc");
    t.image("a", 40, 30);
    t.ann("a", c.xml);
    t.split("s", {"a"});
    const std::string m = error_of([&] { load_voc(t.root, "s"); });
    if (c.names_file) {
      EXPECT_TRUE(contains(m, "a.xml"));
    }
    EXPECT_TRUE(contains(m, c.needle));
  }
}

TEST(Voc, MissingFilesAndSizeMismatch) {
  {
    TempDir tmp;
    VocTree t(tmp / "voc");
    t.basic({{"cat", "1", "1", "5", "5"}});
    t.ann("b", xml_of("b", 40, 30, {{"cat", "1", "1", "5", "5"}}));
    t.split("s", {"a", "b"});  // b has no image
    const std::string m = error_of([&] { load_voc(t.root, "s"); });
    EXPECT_TRUE(contains(m, "missing image file"));
    EXPECT_TRUE(contains(m, "b.jpg"));
    t.split("s2", {"a", "c"});  // c has nothing
    EXPECT_TRUE(contains(error_of([&] { load_voc(t.root, "s2"); }), "missing annotation file"));
    EXPECT_TRUE(contains(error_of([&] { load_voc(t.root, "nosuchsplit"); }), "nosuchsplit.txt"));
  }
  {
    TempDir tmp;
    VocTree t(tmp / "voc");
    const std::string m = t.error_with({{"cat", "1", "1", "5", "5"}}, 50, 30);
    EXPECT_TRUE(contains(m, "<size> 50x30"));
    EXPECT_TRUE(contains(m, "decodes to 40x30"));
    EXPECT_TRUE(contains(m, "a.jpg"));
  }
  {
    TempDir tmp;  // no <size>: the decoded size is used, and a corrupted JPEG names the file
    VocTree t(tmp / "voc");
    t.basic({{"cat", "1", "1", "5", "5"}}, -1, -1);
    EXPECT_NO_THROW(load_voc(t.root, "s"));
    rf::testing::write_bytes(t.root + "/JPEGImages/a.jpg", {0xFF, 0xD8, 0xFF, 0xE0, 0, 1});
    EXPECT_TRUE(contains(error_of([&] { load_voc(t.root, "s"); }), "a.jpg"));
  }
}

TEST(Voc, RealBccdArchive) {
  const std::string archive = std::string(RF_SHARED_DATASETS_DIR) + "/bccd-voc.tar.zst";
  if (!std::filesystem::exists(archive)) GTEST_SKIP() << "no BCCD archive at " << archive;
  const std::string dir = prepare_archive(archive, RF_TEST_CACHE_DIR);
  const std::string root = dir + "/BCCD";
  ASSERT_TRUE(looks_like_voc(root)) << root;
  const auto t0 = std::chrono::steady_clock::now();
  const DetDataset test = load_voc(root, "test");
  const double t_test = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const DetDataset train = load_voc(root, "train"), val = load_voc(root, "val");
  std::printf("BCCD: test split (72 images) loaded in %.3f s; train %lld boxes, val %lld, test %lld\n", t_test,
              (long long)train.num_boxes(), (long long)val.num_boxes(), (long long)test.num_boxes());
  EXPECT_EQ(train.size(), 205);
  EXPECT_EQ(val.size(), 87);
  EXPECT_EQ(test.size(), 72);
  const std::vector<std::string> cls = {"Platelets", "RBC", "WBC"};
  EXPECT_EQ(train.classes, cls);
  EXPECT_EQ(val.classes, cls);
  EXPECT_EQ(test.classes, cls);
  std::vector<std::string> warnings = train.warnings;
  warnings.insert(warnings.end(), val.warnings.begin(), val.warnings.end());
  warnings.insert(warnings.end(), test.warnings.begin(), test.warnings.end());
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_TRUE(contains(warnings[0], "BloodImage_00343.xml"));  // in train
  EXPECT_TRUE(contains(warnings[1], "BloodImage_00338.xml"));  // in val
  for (const auto& w : warnings) EXPECT_TRUE(contains(w, "zero-size"));
  EXPECT_EQ(train.num_boxes() + val.num_boxes() + test.num_boxes(), 4888 - 2);
  for (const DetDataset* d : {&train, &val, &test}) {
    EXPECT_NO_THROW(d->validate());
    for (const Image& im : d->images) {
      EXPECT_EQ(im.W, 640);
      EXPECT_EQ(im.H, 480);
    }
  }
  EXPECT_LT(t_test, 30.0);
}
