<#
  Homedesk workstation onboarding: run once on each office PC, in an elevated PowerShell
  ("Run as administrator"):   powershell -ExecutionPolicy Bypass -File .\enable-remote-desktop.ps1

  It enables Remote Desktop with Network Level Authentication, opens the Windows firewall for it,
  and prints what the Homedesk administrator registers: the computer's name and addresses, the RDP
  port, and the SHA-256 fingerprint of the certificate Remote Desktop presents (Homedesk pins it).
#>
#Requires -RunAsAdministrator
$ErrorActionPreference = 'Stop'

$ts = 'HKLM:\System\CurrentControlSet\Control\Terminal Server'
$rdpTcp = "$ts\WinStations\RDP-Tcp"

Set-ItemProperty -Path $ts -Name fDenyTSConnections -Value 0          # allow Remote Desktop
Set-ItemProperty -Path $rdpTcp -Name UserAuthentication -Value 1      # require NLA
Enable-NetFirewallRule -DisplayGroup 'Remote Desktop' | Out-Null
Restart-Service -Name TermService -Force

$port = (Get-ItemProperty -Path $rdpTcp -Name PortNumber).PortNumber
$setting = Get-CimInstance -Namespace root\cimv2\TerminalServices -ClassName Win32_TSGeneralSetting `
  -Filter "TerminalName='RDP-tcp'"
$sha1 = $setting.SSLCertificateSHA1Hash
$cert = Get-ChildItem -Path 'Cert:\LocalMachine\Remote Desktop', 'Cert:\LocalMachine\My' |
  Where-Object { $_.Thumbprint -eq $sha1 } | Select-Object -First 1
if (-not $cert) { throw "Remote Desktop's certificate ($sha1) was not found in the machine's stores." }
$sha256 = -join ([System.Security.Cryptography.SHA256]::Create().ComputeHash($cert.RawData) |
  ForEach-Object { $_.ToString('x2') })

$addresses = (Get-NetIPAddress -AddressFamily IPv4 | Where-Object { $_.IPAddress -ne '127.0.0.1' }).IPAddress -join ', '
Write-Host ''
Write-Host 'Remote Desktop is enabled with Network Level Authentication.' -ForegroundColor Green
Write-Host "Computer name : $env:COMPUTERNAME"
Write-Host "Addresses     : $addresses"
Write-Host "RDP port      : $port"
Write-Host "Certificate   : sha256 $sha256"
Write-Host ''
Write-Host 'Give these to your Homedesk administrator, who registers this PC with:'
Write-Host "  relay workstation add `"$env:COMPUTERNAME`" --host <address> --port $port"
Write-Host "  relay workstation pin `"$env:COMPUTERNAME`" $sha256"
