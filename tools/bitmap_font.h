// A tiny 5x7 pixel font for plot labels: digits, lower-case letters (upper case draws as lower case),
// space and . , - + _ : ( ) / = % ?. Any other character draws as '?'.
#pragma once

#include "tools/image.h"

#include <cstdint>
#include <string_view>

namespace flowgrad {

inline constexpr int kGlyphWidth = 5, kGlyphHeight = 7;
inline constexpr int kGlyphAdvance = kGlyphWidth + 1;  // one blank column between characters

// The glyph's rows, top first, in the low 7 bytes (row 0 in bits 48..55); within a row bit 4 is the
// leftmost pixel.
uint64_t glyph_rows(char c);

// Pixel width of `text` drawn at `scale`, without the blank column after the last character.
int text_width(std::string_view text, int scale);
inline int text_height(int scale) { return kGlyphHeight * scale; }

// Draws `text` with its top-left corner at (x, y), each font pixel a scale x scale block; clipped to the
// image.
void draw_text(Image& image, int x, int y, std::string_view text, Rgb color, int scale);

}  // namespace flowgrad
