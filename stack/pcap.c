#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pcap.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_SNAPLEN 262144u
#define LINKTYPE_ETHERNET 1u
#define LINKTYPE_RAW 101u

/* pcap files are in the writer's byte order; readers detect it from the
 * magic, so host order is right. */
struct pcap_file_header {
	uint32_t magic;
	uint16_t version_major, version_minor;
	int32_t thiszone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pcap_record {
	uint32_t ts_sec, ts_usec, caplen, len;
};

int ust_pcap_open(struct ust_pcap *pc, const char *path, bool l3)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	return ust_pcap_adopt(pc, fd, l3);
}

int ust_pcap_adopt(struct ust_pcap *pc, int fd, bool l3)
{
	struct pcap_file_header h = {
		.magic = PCAP_MAGIC_US, .version_major = 2, .version_minor = 4,
		.snaplen = PCAP_SNAPLEN, .linktype = l3 ? LINKTYPE_RAW : LINKTYPE_ETHERNET,
	};
	struct stat sb;

	pc->f = fdopen(fd, "a");
	if (!pc->f) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* Records reach the file when the link flushes after each batch, in
	 * one O_APPEND write as long as a batch fits the buffer. */
	setvbuf(pc->f, NULL, _IOFBF, 1 << 20);
	if (fstat(fd, &sb) == 0 && sb.st_size == 0) {
		fwrite(&h, sizeof(h), 1, pc->f);
		fflush(pc->f);
	}
	return 0;
}

void ust_pcap_write(struct ust_pcap *pc, const uint8_t *frame, size_t len)
{
	struct timespec ts;
	struct pcap_record r;

	if (!pc->f)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	r.ts_sec = (uint32_t)ts.tv_sec;
	r.ts_usec = (uint32_t)(ts.tv_nsec / 1000);
	r.len = (uint32_t)len;
	r.caplen = (uint32_t)(len < PCAP_SNAPLEN ? len : PCAP_SNAPLEN);
	fwrite(&r, sizeof(r), 1, pc->f);
	fwrite(frame, r.caplen, 1, pc->f);
}

void ust_pcap_flush(struct ust_pcap *pc)
{
	if (pc->f)
		fflush(pc->f);
}

void ust_pcap_close(struct ust_pcap *pc)
{
	if (pc->f)
		fclose(pc->f);
	pc->f = NULL;
}
