//! Device redirection (MS-RDPEFS, the `rdpdr` static channel) without I/O: the browser's drive and
//! the universal printer.
//!
//! IronRDP's `Rdpdr` runs the channel's handshake and decodes the workstation's requests, handing
//! them to a backend while it processes a PDU. As with the clipboard, [`QueueBackend`] only records
//! them; [`Redirection::drain`] then answers each one (the drive from a [`DriveBackend`] through the
//! file table in `drive::server`, the printer through `printer`) and turns results into [`Event`]s.
//! The backend stays outside the channel, so it need not be `Send` (browser storage is not).

use crate::drive::server::{DriveNotice, FileServer};
use crate::drive::{DriveBackend, DriveConfig, DriveError, IoId, IoOutcome, DRIVE_NAME};
use crate::error::{self, ClientError};
use crate::printer::PrintJobs;
use crate::Event;
use ironrdp_pdu::PduResult;
use ironrdp_rdpdr::pdu::efs::{
    DeviceControlRequest, DeviceIoRequest, NtStatus, PrinterIoRequest, ServerDeviceAnnounceResponse,
    ServerDriveIoRequest,
};
use ironrdp_rdpdr::pdu::esc::{ScardCall, ScardIoCtlCode};
use ironrdp_rdpdr::{Rdpdr, RdpdrBackend};
use ironrdp_session::ActiveStage;
use ironrdp_svc::{SvcMessage, SvcProcessorMessages};
use std::collections::VecDeque;

const DRIVE_DEVICE_ID: u32 = 1;
const PRINTER_DEVICE_ID: u32 = 2;
/// The printer's name in the session.
pub const PRINTER_NAME: &str = "Universal Printer";
/// A driver every Windows has whose output is PDF.
pub const PRINTER_DRIVER: &str = "Microsoft Print To PDF";

/// Which devices the session gets.
#[derive(Default)]
pub struct Devices {
    /// The browser's drive: its storage and folders.
    pub drive: Option<(Box<dyn DriveBackend>, DriveConfig)>,
    /// Announce the universal printer (PDF print jobs become [`Event::PrintJob`]).
    pub printer: bool,
}

impl Devices {
    pub fn is_empty(&self) -> bool {
        self.drive.is_none() && !self.printer
    }
}

/// What the channel handed over while it processed a PDU, in order.
#[derive(Debug)]
enum Request {
    Drive(ServerDriveIoRequest),
    Printer(PrinterIoRequest),
    /// A printer write above IronRDP's size limit: the job is spoiled.
    PrinterWriteRejected(DeviceIoRequest),
    /// The workstation started the channel over: every open file is gone.
    Reset,
}

/// The backend given to `Rdpdr`: records requests for [`Redirection::drain`].
#[derive(Debug, Default)]
struct QueueBackend {
    requests: VecDeque<Request>,
}

ironrdp_core::impl_as_any!(QueueBackend);

impl RdpdrBackend for QueueBackend {
    fn reset(&mut self) -> PduResult<()> {
        self.requests.push_back(Request::Reset);
        Ok(())
    }

    fn handle_server_device_announce_response(&mut self, pdu: ServerDeviceAnnounceResponse) -> PduResult<()> {
        if pdu.result_code != NtStatus::SUCCESS {
            let device = if pdu.device_id == PRINTER_DEVICE_ID { "printer" } else { "drive" };
            tracing::info!(device, status = ?pdu.result_code, "the workstation refused a redirected device");
        }
        Ok(())
    }

    fn handle_scard_call(
        &mut self,
        _req: DeviceControlRequest<ScardIoCtlCode>,
        _call: ScardCall,
    ) -> PduResult<Vec<SvcMessage>> {
        Err(ironrdp_pdu::pdu_other_err!("no smart card is redirected"))
    }

    fn handle_drive_io_request(&mut self, req: ServerDriveIoRequest) -> PduResult<Vec<SvcMessage>> {
        self.requests.push_back(Request::Drive(req));
        Ok(Vec::new())
    }

    fn handle_printer_io_request(&mut self, req: PrinterIoRequest) -> PduResult<Vec<SvcMessage>> {
        self.requests.push_back(Request::Printer(req));
        Ok(Vec::new())
    }

    fn reject_printer_write(&mut self, req: DeviceIoRequest) -> PduResult<Vec<SvcMessage>> {
        self.requests.push_back(Request::PrinterWriteRejected(req));
        Ok(Vec::new())
    }
}

/// The channel processor the connector announces (`rdpdr`), with the chosen devices.
pub(crate) fn channel(devices: &Devices, computer_name: &str) -> Rdpdr {
    let mut rdpdr = Rdpdr::new(Box::new(QueueBackend::default()), computer_name.to_owned());
    if devices.drive.is_some() {
        rdpdr = rdpdr.with_drives(Some(vec![(DRIVE_DEVICE_ID, DRIVE_NAME.to_owned())]));
    }
    if devices.printer {
        rdpdr = rdpdr.with_printer_driver_and_network(
            PRINTER_DEVICE_ID,
            PRINTER_NAME.to_owned(),
            PRINTER_DRIVER.to_owned(),
            false,
        );
    }
    rdpdr
}

/// Our side of device redirection, kept across reactivations.
pub(crate) struct Redirection {
    drive: Option<FileServer>,
    printer: Option<PrintJobs>,
}

impl Redirection {
    pub(crate) fn new(devices: Devices) -> Redirection {
        Redirection {
            drive: devices.drive.map(|(backend, config)| FileServer::new(backend, config)),
            printer: devices.printer.then(PrintJobs::default),
        }
    }

    /// Answers what the channel recorded during the last processing; returns frames to send and
    /// pushes events for the page.
    pub(crate) fn drain(
        &mut self,
        stage: &mut ActiveStage,
        events: &mut Vec<Event>,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let Some(rdpdr) = stage.get_svc_processor_mut::<Rdpdr>() else {
            return Ok(Vec::new());
        };
        let answers = self.answer_queued(rdpdr, events);
        answers
            .into_iter()
            .map(|answer| {
                stage
                    .process_svc_processor_messages(SvcProcessorMessages::<Rdpdr>::new(vec![answer]))
                    .map_err(|e| error::from_session(&e))
            })
            .collect()
    }

    /// Answers a read or write the drive's store finished later; nothing for an id nobody waits for.
    pub(crate) fn complete_drive_io(
        &mut self,
        stage: &mut ActiveStage,
        id: IoId,
        outcome: Result<IoOutcome, DriveError>,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let Some(answer) = self.drive.as_mut().and_then(|drive| drive.complete(id, outcome)) else {
            return Ok(Vec::new());
        };
        if stage.get_svc_processor_mut::<Rdpdr>().is_none() {
            return Ok(Vec::new());
        }
        let frame = stage
            .process_svc_processor_messages(SvcProcessorMessages::<Rdpdr>::new(vec![answer]))
            .map_err(|e| error::from_session(&e))?;
        Ok(vec![frame])
    }

    /// The answers to everything the channel recorded, in order.
    fn answer_queued(&mut self, rdpdr: &mut Rdpdr, events: &mut Vec<Event>) -> Vec<SvcMessage> {
        let mut answers = Vec::new();
        while let Some(request) =
            rdpdr.downcast_backend_mut::<QueueBackend>().and_then(|backend| backend.requests.pop_front())
        {
            answers.extend(self.answer(request, events));
        }
        answers
    }

    fn answer(&mut self, request: Request, events: &mut Vec<Event>) -> Option<SvcMessage> {
        match request {
            Request::Drive(req) => {
                let Some(drive) = self.drive.as_mut() else {
                    return Some(not_redirected(drive_request_header(&req)));
                };
                let mut notices = Vec::new();
                let answer = drive.handle(req, &mut notices);
                events.extend(notices.into_iter().map(|notice| match notice {
                    DriveNotice::Download { path, size } => Event::DriveDownload { path: path.to_string(), size },
                }));
                answer
            }
            Request::Printer(req) => match self.printer.as_mut() {
                Some(printer) => Some(printer.handle(req, events)),
                None => Some(not_redirected(req.into_device_io_request())),
            },
            Request::PrinterWriteRejected(req) => match self.printer.as_mut() {
                Some(printer) => Some(printer.reject_write(req, events)),
                None => Some(not_redirected(req)),
            },
            Request::Reset => {
                if let Some(drive) = self.drive.as_mut() {
                    drive.close_all();
                }
                if let Some(printer) = self.printer.as_mut() {
                    printer.abandon_all();
                }
                None
            }
        }
    }
}

fn drive_request_header(req: &ServerDriveIoRequest) -> DeviceIoRequest {
    match req {
        ServerDriveIoRequest::ServerCreateDriveRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveQueryInformationRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::DeviceCloseRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveQueryDirectoryRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveNotifyChangeDirectoryRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveQueryVolumeInformationRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::DeviceControlRequest(r) => r.header.clone(),
        ServerDriveIoRequest::DeviceReadRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::DeviceWriteRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::DeviceFlushBuffersRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveSetInformationRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveLockControlRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveQuerySecurityRequest(r) => r.device_io_request.clone(),
        ServerDriveIoRequest::ServerDriveSetSecurityRequest(r) => r.device_io_request.clone(),
    }
}

/// The completion for a request to a device we did not announce.
fn not_redirected(io: DeviceIoRequest) -> SvcMessage {
    use ironrdp_rdpdr::pdu::efs::{DeviceCloseResponse, DeviceIoResponse};
    SvcMessage::from(ironrdp_rdpdr::pdu::RdpdrPdu::DeviceCloseResponse(DeviceCloseResponse {
        device_io_response: DeviceIoResponse::new(io, NtStatus::INVALID_DEVICE_REQUEST),
    }))
}

#[cfg(test)]
#[path = "redirection_tests.rs"]
mod tests;
