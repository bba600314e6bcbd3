//! The universal printer: print jobs the workstation sends to "Universal Printer" become PDFs for
//! the page.
//!
//! The printer is announced with a driver whose output is PDF ("Microsoft Print To PDF"), so a job's
//! bytes are the document itself. They are collected per open job (bounded) and, when the workstation
//! closes the job, checked: a PDF becomes [`Event::PrintJob`], anything else (PostScript, XPS, a job
//! that was too large or spoiled) a [`Event::PrintError`] sentence, never a broken file.

use crate::Event;
use ironrdp_rdpdr::pdu::efs::{
    DeviceCloseResponse, DeviceCreateResponse, DeviceIoRequest, DeviceIoResponse, DeviceWriteResponse, Information,
    NtStatus, PrinterIoRequest,
};
use ironrdp_rdpdr::pdu::RdpdrPdu;
use ironrdp_svc::SvcMessage;
use std::collections::HashMap;

/// Largest print job kept (the page holds it until the user saves it).
pub(crate) const MAX_JOB_BYTES: usize = 256 * 1024 * 1024;
/// Jobs open at once.
const MAX_OPEN_JOBS: usize = 16;

enum Job {
    Collecting(Vec<u8>),
    /// Too large or a write was refused: the job ends with this message.
    Spoiled(&'static str),
}

/// The open print jobs by file id.
#[derive(Default)]
pub(crate) struct PrintJobs {
    jobs: HashMap<u32, Job>,
    next_file_id: u32,
    printed: u32,
}

const TOO_LARGE: &str = "The print job is larger than 256 MB and was not kept.";

fn message(pdu: RdpdrPdu) -> SvcMessage {
    SvcMessage::from(pdu)
}

impl PrintJobs {
    pub(crate) fn handle(&mut self, request: PrinterIoRequest, events: &mut Vec<Event>) -> SvcMessage {
        match request {
            PrinterIoRequest::Create(req) => {
                let io = req.device_io_request;
                if self.jobs.len() >= MAX_OPEN_JOBS {
                    return message(RdpdrPdu::DeviceCreateResponse(DeviceCreateResponse {
                        device_io_reply: DeviceIoResponse::new(io, NtStatus::INSUFFICIENT_RESOURCES),
                        file_id: 0,
                        information: Information::empty(),
                    }));
                }
                self.next_file_id = self.next_file_id.wrapping_add(1).max(1);
                self.jobs.insert(self.next_file_id, Job::Collecting(Vec::new()));
                message(RdpdrPdu::DeviceCreateResponse(DeviceCreateResponse {
                    device_io_reply: DeviceIoResponse::new(io, NtStatus::SUCCESS),
                    file_id: self.next_file_id,
                    information: Information::FILE_OPENED,
                }))
            }
            PrinterIoRequest::Write(req) => {
                let io = req.device_io_request;
                let length = u32::try_from(req.write_data.len()).unwrap_or(u32::MAX);
                let status = match self.jobs.get_mut(&io.file_id) {
                    None => NtStatus::INVALID_HANDLE,
                    Some(job) => {
                        let fits =
                            matches!(job, Job::Collecting(data) if data.len() + req.write_data.len() <= MAX_JOB_BYTES);
                        match job {
                            Job::Collecting(data) if fits => {
                                data.extend_from_slice(&req.write_data);
                                NtStatus::SUCCESS
                            }
                            Job::Collecting(_) => {
                                *job = Job::Spoiled(TOO_LARGE);
                                NtStatus::DISK_FULL
                            }
                            Job::Spoiled(_) => NtStatus::UNSUCCESSFUL,
                        }
                    }
                };
                let length = if status == NtStatus::SUCCESS { length } else { 0 };
                message(RdpdrPdu::DeviceWriteResponse(DeviceWriteResponse {
                    device_io_reply: DeviceIoResponse::new(io, status),
                    length,
                }))
            }
            PrinterIoRequest::Close(req) => {
                let io = req.device_io_request;
                let status = match self.jobs.remove(&io.file_id) {
                    None => NtStatus::INVALID_HANDLE,
                    Some(job) => {
                        self.finish(job, events);
                        NtStatus::SUCCESS
                    }
                };
                message(RdpdrPdu::DeviceCloseResponse(DeviceCloseResponse {
                    device_io_response: DeviceIoResponse::new(io, status),
                }))
            }
        }
    }

    /// A write above IronRDP's per-request limit: the job is spoiled, the write refused.
    pub(crate) fn reject_write(&mut self, io: DeviceIoRequest, _events: &mut [Event]) -> SvcMessage {
        if let Some(job) = self.jobs.get_mut(&io.file_id) {
            *job = Job::Spoiled(TOO_LARGE);
        }
        message(RdpdrPdu::DeviceWriteResponse(DeviceWriteResponse {
            device_io_reply: DeviceIoResponse::new(io, NtStatus::INVALID_PARAMETER),
            length: 0,
        }))
    }

    fn finish(&mut self, job: Job, events: &mut Vec<Event>) {
        let data = match job {
            Job::Spoiled(reason) => {
                events.push(Event::PrintError(reason.to_owned()));
                return;
            }
            Job::Collecting(data) => data,
        };
        if data.is_empty() {
            events.push(Event::PrintError("The workstation sent an empty print job.".to_owned()));
            return;
        }
        if !data.starts_with(b"%PDF-") {
            events.push(Event::PrintError(format!(
                "The print job is not a PDF ({}); print with the \"Universal Printer\" and its PDF driver.",
                describe(&data)
            )));
            return;
        }
        self.printed += 1;
        events.push(Event::PrintJob { name: format!("print-job-{}.pdf", self.printed), pdf: data });
    }

    /// The channel restarted: open jobs will never be closed.
    pub(crate) fn abandon_all(&mut self) {
        self.jobs.clear();
    }
}

/// What a job that is not a PDF looks like, for the message.
fn describe(data: &[u8]) -> &'static str {
    if data.starts_with(b"%!PS") || data.starts_with(b"\x04%!PS") {
        "it is PostScript"
    } else if data.starts_with(b"PK\x03\x04") {
        "it looks like XPS"
    } else if data.starts_with(b"\x1b%-12345X") || data.starts_with(b"\x1bE") {
        "it is printer language (PCL/PJL)"
    } else {
        "unknown format"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironrdp_rdpdr::pdu::efs::{
        CreateDisposition, CreateOptions, DesiredAccess, DeviceCloseRequest, DeviceCreateRequest, DeviceWriteRequest,
        FileAttributes, MajorFunction, MinorFunction, SharedAccess,
    };

    fn io(file_id: u32, major_function: MajorFunction) -> DeviceIoRequest {
        DeviceIoRequest {
            device_id: 2,
            file_id,
            completion_id: 7,
            major_function,
            minor_function: MinorFunction::from(0),
        }
    }

    fn open(jobs: &mut PrintJobs) -> u32 {
        let create = DeviceCreateRequest {
            device_io_request: io(0, MajorFunction::Create),
            desired_access: DesiredAccess::empty(),
            allocation_size: 0,
            file_attributes: FileAttributes::empty(),
            shared_access: SharedAccess::empty(),
            create_disposition: CreateDisposition::FILE_OPEN,
            create_options: CreateOptions::empty(),
            path: String::new(),
        };
        jobs.handle(PrinterIoRequest::Create(create), &mut Vec::new());
        jobs.next_file_id
    }

    fn print(chunks: &[&[u8]]) -> Vec<Event> {
        let mut jobs = PrintJobs::default();
        let file_id = open(&mut jobs);
        let mut events = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            let write = DeviceWriteRequest {
                device_io_request: io(file_id, MajorFunction::Write),
                offset: n as u64,
                write_data: chunk.to_vec(),
            };
            jobs.handle(PrinterIoRequest::Write(write), &mut events);
        }
        let close = DeviceCloseRequest { device_io_request: io(file_id, MajorFunction::Close) };
        jobs.handle(PrinterIoRequest::Close(close), &mut events);
        events
    }

    #[test]
    fn a_pdf_job_arrives_whole() {
        let events = print(&[b"%PDF-1.4\n", b"body", b"\n%%EOF\n"]);
        assert_eq!(
            events,
            [Event::PrintJob { name: "print-job-1.pdf".into(), pdf: b"%PDF-1.4\nbody\n%%EOF\n".to_vec() }]
        );
    }

    #[test]
    fn postscript_xps_and_empty_jobs_give_a_message() {
        for (data, hint) in
            [(&b"%!PS-Adobe-3.0\n"[..], "PostScript"), (b"PK\x03\x04xps", "XPS"), (b"garbage", "unknown")]
        {
            let events = print(&[data]);
            match events.as_slice() {
                [Event::PrintError(message)] => assert!(message.contains(hint), "{message}"),
                other => panic!("expected a message, got {other:?}"),
            }
        }
        assert!(matches!(print(&[]).as_slice(), [Event::PrintError(m)] if m.contains("empty")));
    }

    #[test]
    fn a_rejected_write_spoils_the_job() {
        let mut jobs = PrintJobs::default();
        let file_id = open(&mut jobs);
        jobs.reject_write(io(file_id, MajorFunction::Write), &mut []);
        let mut events = Vec::new();
        let close = DeviceCloseRequest { device_io_request: io(file_id, MajorFunction::Close) };
        jobs.handle(PrinterIoRequest::Close(close), &mut events);
        assert!(matches!(events.as_slice(), [Event::PrintError(m)] if m.contains("256 MB")));
    }
}
