// Lexer of the Jinja subset used by chat templates: splits a template into text and tag tokens, applying
// whitespace control ({%- -%}) and the trim_blocks / lstrip_blocks settings transformers renders with.
#include "tokenizer/jinja_lexer.h"

#include <cctype>

namespace idefics::tokenizer::jinja {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  StatusOr<std::vector<Token>> Run() {
    bool strip_next_text = false;  // a "-" closed the previous tag
    bool trim_newline = false;     // trim_blocks after a block/comment tag
    while (pos_ < src_.size()) {
      const size_t open = FindTagOpen(pos_);
      std::string text(src_.substr(pos_, open - pos_));
      size_t text_pos = pos_;
      if (strip_next_text) {
        size_t k = 0;
        while (k < text.size() && IsSpace(text[k])) ++k;
        text.erase(0, k);
        text_pos += k;
      } else if (trim_newline && !text.empty()) {
        if (text[0] == '\n') {
          text.erase(0, 1);
        } else if (text.compare(0, 2, "\r\n") == 0) {
          text.erase(0, 2);
        }
      }
      strip_next_text = trim_newline = false;
      if (open == src_.size()) {
        if (!text.empty()) out_.push_back({TokenKind::kText, std::move(text), text_pos});
        break;
      }
      const char kind = src_[open + 1];  // '{', '%' or '#'
      const char modifier = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (modifier == '-') {
        while (!text.empty() && IsSpace(text.back())) text.pop_back();
      } else if (modifier != '+' && (kind == '%' || kind == '#')) {
        LstripBlock(open, &text);
      }
      if (!text.empty()) out_.push_back({TokenKind::kText, std::move(text), text_pos});
      pos_ = open + 2 + ((modifier == '-' || modifier == '+') ? 1 : 0);
      bool closed_with_minus = false;
      if (kind == '#') {
        const size_t close = src_.find("#}", pos_);
        if (close == std::string_view::npos) return Error(open, "unterminated comment '{#'");
        closed_with_minus = close > pos_ && src_[close - 1] == '-';
        pos_ = close + 2;
      } else {
        out_.push_back({kind == '{' ? TokenKind::kVarBegin : TokenKind::kBlockBegin, "", open});
        RETURN_IF_ERROR(LexTag(kind == '{' ? '}' : '%', &closed_with_minus));
      }
      strip_next_text = closed_with_minus;
      trim_newline = !closed_with_minus && kind != '{' && !(pos_ >= 3 && src_[pos_ - 3] == '+');
    }
    out_.push_back({TokenKind::kEnd, "", src_.size()});
    return std::move(out_);
  }

 private:
  size_t FindTagOpen(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  // lstrip_blocks: drop spaces/tabs before a block tag when only they separate it from the line start.
  void LstripBlock(size_t open, std::string* text) const {
    size_t k = open;
    while (k > 0 && (src_[k - 1] == ' ' || src_[k - 1] == '\t')) --k;
    if (k != 0 && src_[k - 1] != '\n') return;
    const size_t n = open - k;
    if (n <= text->size()) text->resize(text->size() - n);
  }

  // Lexes expression tokens up to the tag end ("}}" or "%}", optionally preceded by "-").
  Status LexTag(char close_char, bool* closed_with_minus) {
    const TokenKind end_kind = close_char == '}' ? TokenKind::kVarEnd : TokenKind::kBlockEnd;
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) ++pos_;
      if (pos_ >= src_.size())
        return Error(pos_, "unterminated tag (missing '" + std::string(1, close_char) + "}')");
      const char c = src_[pos_];
      if ((c == '-' || c == '+') && pos_ + 2 < src_.size() + 0 && src_[pos_ + 1] == close_char &&
          src_[pos_ + 2] == '}') {
        *closed_with_minus = c == '-';
        out_.push_back({end_kind, "", pos_});
        pos_ += 3;
        return Status::Ok();
      }
      if (c == close_char && pos_ + 1 < src_.size() && src_[pos_ + 1] == '}') {
        out_.push_back({end_kind, "", pos_});
        pos_ += 2;
        return Status::Ok();
      }
      if (IsNameStart(c)) {
        const size_t start = pos_;
        while (pos_ < src_.size() && IsNameChar(src_[pos_])) ++pos_;
        out_.push_back({TokenKind::kName, std::string(src_.substr(start, pos_ - start)), start});
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        RETURN_IF_ERROR(LexNumber());
      } else if (c == '\'' || c == '"') {
        RETURN_IF_ERROR(LexString(c));
      } else {
        RETURN_IF_ERROR(LexOperator());
      }
    }
  }

  Status LexNumber() {
    const size_t start = pos_;
    while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    }
    out_.push_back({is_float ? TokenKind::kFloat : TokenKind::kInteger,
                    std::string(src_.substr(start, pos_ - start)), start});
    return Status::Ok();
  }

  Status LexString(char quote) {
    const size_t start = pos_++;
    std::string value;
    while (pos_ < src_.size() && src_[pos_] != quote) {
      char c = src_[pos_++];
      if (c == '\\' && pos_ < src_.size()) {
        const char e = src_[pos_++];
        switch (e) {
          case 'n':
            value += '\n';
            break;
          case 't':
            value += '\t';
            break;
          case 'r':
            value += '\r';
            break;
          case '\\':
            value += '\\';
            break;
          case '\'':
            value += '\'';
            break;
          case '"':
            value += '"';
            break;
          case '\n':
            break;  // line continuation
          default:  // Python keeps unknown escapes verbatim
            value += '\\';
            value += e;
        }
      } else {
        value += c;
      }
    }
    if (pos_ >= src_.size()) return Error(start, "unterminated string literal");
    ++pos_;
    out_.push_back({TokenKind::kString, std::move(value), start});
    return Status::Ok();
  }

  Status LexOperator() {
    static constexpr std::string_view kTwo[] = {"==", "!=", "<=", ">=", "//", "**"};
    static constexpr std::string_view kOne = "+-*/%~<>=()[]{},.:|";
    for (std::string_view op : kTwo) {
      if (src_.substr(pos_, 2) == op) {
        out_.push_back({TokenKind::kOperator, std::string(op), pos_});
        pos_ += 2;
        return Status::Ok();
      }
    }
    if (kOne.find(src_[pos_]) != std::string_view::npos) {
      out_.push_back({TokenKind::kOperator, std::string(1, src_[pos_]), pos_});
      ++pos_;
      return Status::Ok();
    }
    return Error(pos_, std::string("unexpected character '") + src_[pos_] + "'");
  }

  Status Error(size_t at, const std::string& what) const {
    return InvalidArgument("chat template " + DescribePosition(src_, at) + ": " + what);
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::vector<Token> out_;
};

}  // namespace

StatusOr<std::vector<Token>> Lex(std::string_view source) {
  // jinja2's keep_trailing_newline=False: one newline at the very end of the template is dropped.
  if (source.ends_with("\r\n")) {
    source.remove_suffix(2);
  } else if (source.ends_with("\n")) {
    source.remove_suffix(1);
  }
  return Lexer(source).Run();
}

std::string DescribePosition(std::string_view source, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

}  // namespace idefics::tokenizer::jinja
