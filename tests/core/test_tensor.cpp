// Tensor: shapes, strides, views, copies, borrowed storage and shape errors.
#include <gtest/gtest.h>

#include "host/core/tensor.h"

using namespace rf;

TEST(Tensor, ShapeStridesAndViews) {
  Tensor t = Tensor::zeros(Shape{2, 3, 4, 5});
  EXPECT_EQ(t.numel(), 120);
  EXPECT_EQ(t.strides(), (Shape{60, 20, 5, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.str(), "f32 cpu (2, 3, 4, 5)");
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = float(i);
  Tensor s = t.narrow(1, 1, 2);  // channels 1..2
  EXPECT_FALSE(s.is_contiguous());
  EXPECT_EQ(s.shape(), (Shape{2, 2, 4, 5}));
  EXPECT_EQ(s.f32()[0], 20.f);
  Tensor c = s.clone();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.f32()[0], 20.f);
  EXPECT_EQ(c.f32()[40], 80.f);  // sample 1, channel 1
  Tensor r = t.reshape(Shape{6, -1});
  EXPECT_EQ(r.shape(), (Shape{6, 20}));
  EXPECT_EQ(r.f32(), t.f32());  // a view
  s.fill(-1.f);
  EXPECT_EQ(t.f32()[19], 19.f);
  EXPECT_EQ(t.f32()[20], -1.f);
  EXPECT_EQ(t.f32()[60], 60.f);
}

TEST(Tensor, BorrowedStorageIsNotFreed) {
  std::vector<float> mem(12, 2.f);
  {
    Tensor b = Tensor::borrow(mem.data(), Shape{3, 4});
    EXPECT_FALSE(b.owns_storage());
    b.f32()[0] = 5.f;
  }
  EXPECT_EQ(mem[0], 5.f);
}

TEST(Tensor, ClearErrors) {
  Tensor t = Tensor::zeros(Shape{2, 3});
  EXPECT_THROW(t.reshape(Shape{4, 2}), rf::Error);
  EXPECT_THROW(t.narrow(1, 2, 2), rf::Error);
  EXPECT_THROW(t.data<double>(), rf::Error);
  try {
    check_shape(t, Shape{-1, 4}, "linear.x");
    FAIL();
  } catch (const rf::Error& e) {
    EXPECT_STREQ(e.what(), "linear.x: expected shape (*, 4), got (2, 3)");
  }
  EXPECT_THROW(Tensor::empty(Shape{2, -3}), rf::Error);
  Tensor u = Tensor::zeros(Shape{3, 2});
  EXPECT_THROW(t.copy_from(u), rf::Error);
}

TEST(Tensor, CachingAllocatorReusesBlocks) {
  void* first;
  {
    Tensor a = Tensor::empty(Shape{1 << 20});
    first = a.raw();
  }
  Tensor b = Tensor::empty(Shape{1 << 20});
  EXPECT_EQ(b.raw(), first);
  HostMemoryStats s = host_memory_stats();
  EXPECT_GE(s.live_bytes, size_t(4) << 20);
  EXPECT_GE(s.peak_live_bytes, s.live_bytes);
}
