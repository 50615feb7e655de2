"""``/proc/cpuinfo`` texts in the kernel's own layout, for hosts the tests cannot run on.

x86 Linux prints one block per logical CPU (``show_cpuinfo`` in
``arch/x86/kernel/cpu/proc.c``) with the fields in this order, tab-aligned as
below, and a blank line after each block; AMD parts add ``TLB size``. The
topology fields follow the hypervisor: on an AWS m5.large the two vCPUs are
the two threads of one core (``siblings 2``, ``cpu cores 1``, both ``core id
0``, as in recordings of m5/t3 instances); with one thread per core
``siblings`` equals ``cpu cores``. ``tests/meters/data/cpuinfo_*.txt`` were
written with :func:`render_cpuinfo` except ``cpuinfo_amd_epyc_vm_smt_off.txt``,
recorded on the development VM.
"""

from __future__ import annotations

INTEL_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology "
    "nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic "
    "movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm "
    "3dnowprefetch invpcid_single pti fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid mpx "
    "avx512f avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt "
    "xsavec xgetbv1 xsaves ida arat pku ospke"
)
AMD_FLAGS = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr "
    "sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl "
    "nonstop_tsc cpuid extd_apicid aperfmperf tsc_known_freq pni pclmulqdq ssse3 fma cx16 "
    "pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm "
    "cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch topoext invpcid_single ssbd "
    "ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 invpcid rdseed adx smap clflushopt "
    "clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr rdpru wbnoinvd arat npt nrip_save "
    "vaes vpclmulqdq rdpid"
)


def render_cpuinfo(
    model_name: str,
    *,
    vendor: str = "GenuineIntel",
    sockets: int = 1,
    cores_per_socket: int = 1,
    threads_per_core: int = 2,
    family: int = 6,
    model: int = 85,
    stepping: int = 7,
    mhz: float = 2499.998,
    cache_kb: int = 36608,
    hypervisor: bool = True,
) -> str:
    """The cpuinfo text of a host with this topology (threads of a core numbered adjacently).

    ``hypervisor=False`` drops the ``hypervisor`` flag, as on bare metal.
    """
    amd = vendor in ("AuthenticAMD", "HygonGenuine")
    flags = AMD_FLAGS if amd else INTEL_FLAGS
    if not hypervisor:
        flags = " ".join(f for f in flags.split() if f != "hypervisor")
    blocks = []
    processor = 0
    for socket in range(sockets):
        for core in range(cores_per_socket):
            for thread in range(threads_per_core):
                apic = (socket * cores_per_socket + core) * threads_per_core + thread
                lines = [
                    ("processor", str(processor)),
                    ("vendor_id", vendor),
                    ("cpu family", str(family)),
                    ("model", str(model)),
                    ("model name", model_name),
                    ("stepping", str(stepping)),
                    ("microcode", "0xa0011d1" if amd else "0x5003707"),
                    ("cpu MHz", f"{mhz:.3f}"),
                    ("cache size", f"{cache_kb} KB"),
                    ("physical id", str(socket)),
                    ("siblings", str(cores_per_socket * threads_per_core)),
                    ("core id", str(core)),
                    ("cpu cores", str(cores_per_socket)),
                    ("apicid", str(apic)),
                    ("initial apicid", str(apic)),
                    ("fpu", "yes"),
                    ("fpu_exception", "yes"),
                    ("cpuid level", "16" if amd else "13"),
                    ("wp", "yes"),
                    ("flags", flags),
                    ("bugs", "sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass srso"
                     if amd else "cpu_meltdown spectre_v1 spectre_v2 spec_store_bypass l1tf "
                     "mds swapgs itlb_multihit mmio_stale_data retbleed gds"),
                    ("bogomips", f"{2 * mhz:.2f}"),
                ]
                if amd:
                    lines.append(("TLB size", "2560 4K pages"))
                lines += [("clflush size", "64"), ("cache_alignment", "64"),
                          ("address sizes", "48 bits physical, 48 bits virtual" if amd
                           else "46 bits physical, 48 bits virtual")]
                text = "".join(f"{k}{_tabs(k)}: {v}\n" for k, v in lines)
                blocks.append(text + "power management:\n\n")
                processor += 1
    return "".join(blocks)


def _tabs(key: str) -> str:
    """The kernel pads keys with tabs to column 16 (``"model\\t\\t: "``, ``"cpu MHz\\t\\t: "``)."""
    return "\t" if len(key) >= 8 else "\t\t"


ARM64_GRAVITON2 = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 243.75\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
    "asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
    "CPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    for i in range(2)
)
