#include "qforge/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "qforge/error.hpp"
#include "qforge/mapped_file.hpp"

namespace qforge {

namespace {
constexpr size_t kBufferSize = 4u << 20;

[[noreturn]] void throw_write_error(const std::string& path, int err) {
    if (err == ENOSPC || err == EDQUOT) throw_resource(path, "disk full");
    throw_resource(path, std::string("write failed: ") + std::strerror(err));
}
}  // namespace

OutputFile::OutputFile(const std::string& path, const std::vector<std::string>& inputs) : path_(path) {
    for (const auto& in : inputs) {
        if (same_file(in, path)) throw_usage(path + ": refusing to overwrite the input file");
    }
    std::filesystem::path p(path);
    if (std::filesystem::is_directory(p)) throw_usage(path + ": is a directory, expected a file name");
    const auto dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    std::string tmpl = (dir / ("." + p.filename().string() + ".tmp.XXXXXX")).string();
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) throw_resource(path, std::string("cannot create output: ") + std::strerror(errno));
    ::fchmod(fd_, 0644);
    tmp_path_ = tmpl;
    buf_.reserve(kBufferSize);
}

OutputFile::~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

void OutputFile::flush_buffer() {
    size_t off = 0;
    while (off < buf_.size()) {
        const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_write_error(path_, errno);
        }
        off += static_cast<size_t>(n);
    }
    buf_.clear();
}

void OutputFile::write(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    pos_ += n;
    if (buf_.size() + n > kBufferSize) {
        flush_buffer();
        if (n >= kBufferSize) {
            buf_.assign(p, p + n);
            flush_buffer();
            return;
        }
    }
    buf_.insert(buf_.end(), p, p + n);
}

void OutputFile::write_zeros(size_t n) {
    static const uint8_t zeros[256] = {};
    while (n > 0) {
        const size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
        write(zeros, k);
        n -= k;
    }
}

void OutputFile::commit() {
    flush_buffer();
    if (::fsync(fd_) != 0) throw_write_error(path_, errno);
    if (::close(fd_) != 0) {
        fd_ = -1;
        throw_write_error(path_, errno);
    }
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
        throw_resource(path_, std::string("cannot rename output into place: ") + std::strerror(errno));
    committed_ = true;
}

}  // namespace qforge
