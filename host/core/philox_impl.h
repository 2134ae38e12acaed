// inline definitions: written with philox.cpp
