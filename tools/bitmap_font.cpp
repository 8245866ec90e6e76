#include "tools/bitmap_font.h"

#include <array>
#include <utility>

namespace flowgrad {

namespace {

// Each glyph is seven rows of five bits packed into one integer, top row first: 0x0E11131519110E is
// .###. / #...# / #..## / #.#.# / ##..# / #...# / .###. -- the digit zero. The shapes follow the classic
// HD44780 LCD character ROM.
constexpr std::pair<char, uint64_t> kGlyphs[] = {
    {' ', 0x00000000000000}, {'.', 0x00000000000C0C}, {',', 0x000000000C0408}, {'-', 0x0000001F000000},
    {'+', 0x0004041F040400}, {'_', 0x0000000000001F}, {':', 0x000C0C000C0C00}, {'(', 0x02040808080402},
    {')', 0x08040202020408}, {'/', 0x00010204081000}, {'=', 0x00001F001F0000}, {'%', 0x18190204081303},
    {'?', 0x0E110102040004},
    {'0', 0x0E11131519110E}, {'1', 0x040C040404040E}, {'2', 0x0E11010204081F}, {'3', 0x1F02040201110E},
    {'4', 0x02060A121F0202}, {'5', 0x1F101E0101110E}, {'6', 0x0608101E11110E}, {'7', 0x1F010204080808},
    {'8', 0x0E11110E11110E}, {'9', 0x0E11110F01020C},
    {'a', 0x00000E010F110F}, {'b', 0x1010161911111E}, {'c', 0x00000E1010110E}, {'d', 0x01010D1311110F},
    {'e', 0x00000E111F100E}, {'f', 0x0609081C080808}, {'g', 0x000F11110F010E}, {'h', 0x10101619111111},
    {'i', 0x04000C0404040E}, {'j', 0x0200060202120C}, {'k', 0x10101214181412}, {'l', 0x0C04040404040E},
    {'m', 0x00001A15151111}, {'n', 0x00001619111111}, {'o', 0x00000E1111110E}, {'p', 0x00001E111E1010},
    {'q', 0x00000D130F0101}, {'r', 0x00001619101010}, {'s', 0x00000E100E011E}, {'t', 0x08081C08080906},
    {'u', 0x0000111111130D}, {'v', 0x00001111110A04}, {'w', 0x0000111115150A}, {'x', 0x0000110A040A11},
    {'y', 0x000011110F010E}, {'z', 0x00001F0204081F},
};

constexpr std::array<uint64_t, 128> build_table() {
  std::array<uint64_t, 128> table{};
  const uint64_t unknown = 0x0E110102040004;  // '?'
  for (uint64_t& rows : table) rows = unknown;
  for (const auto& [c, rows] : kGlyphs) table[static_cast<unsigned char>(c)] = rows;
  for (char c = 'A'; c <= 'Z'; ++c) table[static_cast<unsigned char>(c)] = table[static_cast<unsigned char>(c - 'A' + 'a')];
  return table;
}

constexpr std::array<uint64_t, 128> kTable = build_table();

}  // namespace

uint64_t glyph_rows(char c) {
  const auto code = static_cast<unsigned char>(c);
  return code < kTable.size() ? kTable[code] : kTable[static_cast<unsigned char>('?')];
}

int text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

void draw_text(Image& image, int x, int y, std::string_view text, Rgb color, int scale) {
  for (char c : text) {
    const uint64_t rows = glyph_rows(c);
    for (int row = 0; row < kGlyphHeight; ++row) {
      const auto bits = static_cast<unsigned>((rows >> (8 * (kGlyphHeight - 1 - row))) & 0xff);
      for (int column = 0; column < kGlyphWidth; ++column) {
        if (!(bits & (0x10u >> column))) continue;
        for (int dy = 0; dy < scale; ++dy) {
          for (int dx = 0; dx < scale; ++dx) image.set(x + column * scale + dx, y + row * scale + dy, color);
        }
      }
    }
    x += kGlyphAdvance * scale;
  }
}

}  // namespace flowgrad
