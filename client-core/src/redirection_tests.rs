//! The universal printer against a workstation peer built from IronRDP's server half of rdpdr
//! (`RdpdrServer`): the channel's handshake, the printer's announcement (name and PDF driver), then a
//! print job opened, written in chunks and closed, as a Windows spooler does. The job carries a real
//! PDF made here; it must arrive byte for byte, and render (pdftoppm).

use super::*;
use ironrdp_rdpdr::pdu::efs::{
    CapabilityMessage, ClientDriveLockControlResponse, ClientDriveNotifyChangeDirectoryResponse,
    ClientDriveQueryDirectoryResponse, ClientDriveQueryInformationResponse, ClientDriveQuerySecurityResponse,
    ClientDriveQueryVolumeInformationResponse, ClientDriveSetInformationResponse, ClientDriveSetSecurityResponse,
    CoreCapability, CoreCapabilityKind, CreateDisposition, CreateOptions, DesiredAccess, DeviceAnnounceHeader,
    DeviceCloseResponse, DeviceControlResponse, DeviceCreateResponse, DeviceFlushBuffersResponse, DeviceReadResponse,
    DeviceWriteResponse,
};
use ironrdp_rdpdr::pdu::RdpdrPdu;
use ironrdp_rdpdr::server::{RdpdrServer, RdpdrServerBackend};
use ironrdp_svc::SvcProcessor;

/// What the peer saw of the client.
#[derive(Debug, Default)]
struct PeerLog {
    /// Announced devices: (id, type, device data as text).
    announced: Vec<(u32, String)>,
    created: Vec<(u32, u32)>,
    written: Vec<u32>,
    closed: Vec<u32>,
}

ironrdp_core::impl_as_any!(PeerLog);

/// UTF-16LE device data (names and driver of a printer announcement) as text, for the assertions.
fn readable(data: &[u8]) -> String {
    let units: Vec<u16> = data.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
    String::from_utf16_lossy(&units)
}

impl RdpdrServerBackend for PeerLog {
    fn on_device_announce(&mut self, devices: &[DeviceAnnounceHeader]) -> Vec<(u32, bool)> {
        for device in devices {
            self.announced.push((device.device_id(), readable(device.device_data())));
        }
        devices.iter().map(|d| (d.device_id(), true)).collect()
    }
    fn on_device_remove(&mut self, _: &[u32]) {}
    fn on_client_name(&mut self, _: &str) {}
    fn on_create_complete(&mut self, response: &DeviceCreateResponse) -> PduResult<()> {
        self.created.push((response.device_io_reply.io_status.into(), response.file_id));
        Ok(())
    }
    fn on_close_complete(&mut self, response: &DeviceCloseResponse) -> PduResult<()> {
        self.closed.push(response.device_io_response.io_status.into());
        Ok(())
    }
    fn on_read_complete(&mut self, _: &DeviceReadResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_write_complete(&mut self, response: &DeviceWriteResponse) -> PduResult<()> {
        self.written.push(response.length);
        Ok(())
    }
    fn on_flush_buffers_complete(&mut self, _: &DeviceFlushBuffersResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_device_control_complete(&mut self, _: &DeviceControlResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_query_information_complete(&mut self, _: &ClientDriveQueryInformationResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_set_information_complete(&mut self, _: &ClientDriveSetInformationResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_query_directory_complete(&mut self, _: &ClientDriveQueryDirectoryResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_notify_change_directory_complete(&mut self, _: &ClientDriveNotifyChangeDirectoryResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_query_volume_information_complete(&mut self, _: &ClientDriveQueryVolumeInformationResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_lock_control_complete(&mut self, _: &ClientDriveLockControlResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_query_security_complete(&mut self, _: &ClientDriveQuerySecurityResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_set_security_complete(&mut self, _: &ClientDriveSetSecurityResponse) -> PduResult<()> {
        Ok(())
    }
}

/// The client's channel (as the connector runs it) and our side, wired to a server peer.
struct Wire {
    client: Rdpdr,
    redirection: Redirection,
    server: RdpdrServer,
    events: Vec<Event>,
}

fn bytes(message: &SvcMessage) -> Vec<u8> {
    message.encode_unframed_pdu().expect("encodable")
}

/// `RdpdrServer` offers only the drive capability; a Windows workstation also offers printers
/// (MS-RDPEFS 2.2.2.7), so the peer's capability request is replaced by one with both.
fn as_workstation(message: Vec<u8>) -> Vec<u8> {
    const SERVER_CAPABILITY: [u8; 4] = [0x72, 0x44, 0x50, 0x53]; // RDPDR_CTYP_CORE, PAKID_CORE_SERVER_CAPABILITY
    if !message.starts_with(&SERVER_CAPABILITY) {
        return message;
    }
    let capabilities = RdpdrPdu::CoreCapability(CoreCapability {
        capabilities: vec![
            CapabilityMessage::new_general(0),
            CapabilityMessage::new_drive(),
            CapabilityMessage::new_printer(),
        ],
        kind: CoreCapabilityKind::ServerCoreCapabilityRequest,
    });
    bytes(&SvcMessage::from(capabilities))
}

impl Wire {
    fn new(devices: Devices) -> Wire {
        let client = channel(&devices, "homedesk-test");
        let server = RdpdrServer::new(Box::new(PeerLog::default()));
        Wire { client, redirection: Redirection::new(devices), server, events: Vec::new() }
    }

    /// Delivers server messages and everything that follows until both sides are quiet.
    fn deliver(&mut self, to_client: Vec<SvcMessage>) {
        self.deliver_bytes(to_client.iter().map(bytes).collect());
    }

    fn deliver_bytes(&mut self, mut to_client: Vec<Vec<u8>>) {
        while !to_client.is_empty() {
            let mut to_server = Vec::new();
            for message in to_client.drain(..) {
                to_server.extend(self.client.process(&as_workstation(message)).expect("client processes"));
                to_server.extend(self.redirection.answer_queued(&mut self.client, &mut self.events));
            }
            for message in to_server {
                to_client.extend(self.server.process(&bytes(&message)).expect("server processes").iter().map(bytes));
            }
        }
    }

    fn log(&self) -> &PeerLog {
        self.server.downcast_backend::<PeerLog>().expect("peer log")
    }

    /// Handshake and logon: the devices get announced.
    fn start(&mut self) {
        let announce = self.server.start().expect("server announce");
        self.deliver(announce);
        self.deliver(vec![SvcMessage::from(RdpdrPdu::UserLoggedon)]);
    }

    /// A print job as the spooler sends it: open, chunks, close.
    fn print(&mut self, document: &[u8]) {
        let open = self
            .server
            .drive_create(
                PRINTER_DEVICE_ID,
                "",
                DesiredAccess::empty(),
                CreateDisposition::FILE_OPEN_IF,
                CreateOptions::empty(),
            )
            .expect("create");
        // A spooler opens a printer with no path at all (PathLength 0, MS-RDPEPC 3.2.5.1.1); the
        // peer's builder always writes a NUL-terminated path: cut it off after the fixed part
        // (shared header 4, I/O request header 20, create fields 28, PathLength 4).
        let open: Vec<Vec<u8>> = open
            .iter()
            .map(|message| {
                let mut raw = bytes(message);
                raw.truncate(56);
                raw[52..56].copy_from_slice(&0u32.to_le_bytes());
                raw
            })
            .collect();
        self.deliver_bytes(open);
        let &(status, file_id) = self.log().created.last().expect("the job was opened");
        assert_eq!(status, 0, "opening the print job failed");
        for (n, chunk) in document.chunks(16 * 1024).enumerate() {
            let write = self.server.drive_write(PRINTER_DEVICE_ID, file_id, chunk.to_vec(), (n * 16 * 1024) as u64);
            self.deliver(write.expect("write"));
        }
        let close = self.server.drive_close(PRINTER_DEVICE_ID, file_id).expect("close");
        self.deliver(close);
    }
}

/// A small, valid one-page PDF with a line of text (offsets in the xref table computed here).
fn sample_pdf() -> Vec<u8> {
    let stream = "BT /F1 24 Tf 72 720 Td (Homedesk universal printer) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (n, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", n + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    // A comment after the end so the job spans several writes (readers ignore it).
    pdf.extend_from_slice(format!("%{}\n", "p".repeat(40_000)).as_bytes());
    pdf
}

#[test]
fn the_universal_printer_is_announced_with_its_pdf_driver() {
    let mut wire = Wire::new(Devices { drive: None, printer: true });
    wire.start();
    let announced = &wire.log().announced;
    assert_eq!(announced.len(), 1, "{announced:?}");
    let (id, data) = &announced[0];
    assert_eq!(*id, PRINTER_DEVICE_ID);
    assert!(data.contains(PRINTER_NAME), "printer name missing in {data:?}");
    assert!(data.contains(PRINTER_DRIVER), "driver missing in {data:?}");
}

#[test]
fn a_pdf_print_job_arrives_byte_for_byte_and_renders() {
    let mut wire = Wire::new(Devices { drive: None, printer: true });
    wire.start();
    let document = sample_pdf();
    wire.print(&document);
    assert_eq!(wire.log().closed, [0], "the job was not closed cleanly");
    assert!(wire.log().written.iter().all(|&n| n > 0), "a write was refused: {:?}", wire.log().written);
    let [Event::PrintJob { name, pdf }] = wire.events.as_slice() else {
        panic!(
            "expected one print job, got {:?}",
            wire.events.iter().map(|e| format!("{e:?}").chars().take(80).collect::<String>()).collect::<Vec<_>>()
        );
    };
    assert_eq!(name, "print-job-1.pdf");
    assert!(*pdf == document, "the PDF differs from what was printed");

    // The PDF renders: pdftoppm (poppler-utils, installed by install-toolchain.sh --for-tests).
    let dir = std::env::temp_dir().join(format!("homedesk-print-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("job.pdf"), pdf).unwrap();
    let output = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "30", "-singlefile"])
        .arg(dir.join("job.pdf"))
        .arg(dir.join("page"))
        .output()
        .expect("pdftoppm (poppler-utils: scripts/install-toolchain.sh --for-tests)");
    let rendered = std::fs::metadata(dir.join("page.png")).map(|m| m.len()).unwrap_or(0);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    std::fs::remove_dir_all(&dir).ok();
    assert!(output.status.success() && stderr.trim().is_empty(), "pdftoppm: {stderr}");
    assert!(rendered > 0, "no page was rendered");
}

#[test]
fn a_postscript_job_gives_a_message_not_a_file() {
    let mut wire = Wire::new(Devices { drive: None, printer: true });
    wire.start();
    wire.print(b"%!PS-Adobe-3.0\n/Helvetica findfont 12 scalefont setfont\nshowpage\n");
    match wire.events.as_slice() {
        [Event::PrintError(message)] => assert!(message.contains("PostScript"), "{message}"),
        other => panic!("expected a message, got {other:?}"),
    }
}
