// A small JSON writer for the CLI's --json output: objects, arrays, strings and unsigned
// numbers are all we print. Strings are escaped per RFC 8259 and kept valid UTF-8
// (bytes that are not UTF-8 become U+FFFD), so any value read from a device is safe to print.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keyward::cli {

// `"text"` with quotes, escapes and invalid UTF-8 replaced.
std::string json_quote(std::string_view text);

class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    // The name of the next member; only inside an object.
    JsonWriter& key(std::string_view name);

    JsonWriter& value(std::string_view text);
    JsonWriter& value(const char* text) { return value(std::string_view(text)); }
    JsonWriter& value(uint64_t number);
    JsonWriter& value(uint32_t number) { return value(static_cast<uint64_t>(number)); }
    JsonWriter& value(bool flag);

    // Shorthands for key(name).value(v).
    template <typename T>
    JsonWriter& member(std::string_view name, const T& v) { return key(name).value(v); }

    // The document so far, pretty-printed with two-space indents and a final newline
    // once every container is closed.
    std::string str() const;

private:
    void before_value();
    void newline();

    struct Level {
        bool is_object;
        bool empty = true;
    };
    std::string out_;
    std::vector<Level> levels_;
    bool after_key_ = false;
};

}  // namespace keyward::cli
