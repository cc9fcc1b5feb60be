// Atomic output: bytes go to a temporary file in the destination folder, which is renamed over
// the destination only by commit(). A failed or abandoned write leaves the destination untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qforge {

class OutputFile {
public:
    // inputs: files the caller reads from; writing over one of them is refused.
    explicit OutputFile(const std::string& path, const std::vector<std::string>& inputs = {});
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    void write(const void* data, size_t n);
    void write_zeros(size_t n);
    uint64_t position() const { return pos_; }
    void commit();  // flush, fsync, rename into place
    const std::string& path() const { return path_; }

private:
    void flush_buffer();
    std::string path_;
    std::string tmp_path_;
    int fd_ = -1;
    uint64_t pos_ = 0;
    std::vector<uint8_t> buf_;
    bool committed_ = false;
};

}  // namespace qforge
