; Exitpool Agent for Windows: a per-user Inno Setup 6 installer (no administrator rights).
;
; Built by `python -m installer build` on Windows (see installer/README.md), which runs
;   ISCC /DAppVersion=x.y.z /DFileVersion=x.y.z.0 /DBundleDir=<dist\exitpool-agent> /O<dist> this.iss
; The version is written once, in exitpool/__init__.py, so this script never spells it.
; Keep this file ASCII: ISCC reads a script without a byte order mark as ANSI.

#if VER < EncodeVer(6, 3, 0)
  #error Inno Setup 6.3 or newer is needed (x64compatible)
#endif
#ifndef AppVersion
  #error Pass the version: ISCC /DAppVersion=x.y.z (python -m installer build does)
#endif
#ifndef FileVersion
  #error Pass the numeric file version: ISCC /DFileVersion=x.y.z.w (python -m installer build does)
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\exitpool-agent"
#endif

; Must equal desktop_agent/ui/autostart.py (APP_NAME, RUN_KEY_PATH), so the app's own
; "Start at login" checkbox sees the value this installer writes.
#define AppName "Exitpool Agent"
#define RunKey "Software\Microsoft\Windows\CurrentVersion\Run"
#define ExeName "exitpool-agent.exe"
; Must equal desktop_agent/engine/preconfig.py PRECONFIG_FILE.
#define PreconfigFile "exitpool-agent.json"

[Setup]
; The AppId ties upgrades and the uninstaller together: never change it.
AppId={{0935A665-BB23-4930-841A-62C429607492}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Exitpool
VersionInfoVersion={#FileVersion}
PrivilegesRequired=lowest
; With lowest privileges {autopf} is %LOCALAPPDATA%\Programs.
DefaultDirName={autopf}\{#AppName}
DisableDirPage=yes
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; PySide6 6.7 and newer run on Windows 10 and 11 only.
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=exitpool-agent-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\ico\exitpool-agent.ico
UninstallDisplayIcon={app}\{#ExeName}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2
SolidCompression=yes

[Languages]
Name: "en"; MessagesFile: "compiler:Default.isl"

[CustomMessages]
StartAtLogin=Start {#AppName} when I log in
ConfigMissing=Setup cannot find the configuration file given with /CONFIG:%n%1

[Tasks]
Name: "startatlogin"; Description: "{cm:StartAtLogin}"
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An upgrade must not mix the old bundle's Qt and Python files with the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
; Pre-configuration from the admin page: /CONFIG=path wins over a file beside this setup.
Source: "{src}\{#PreconfigFile}"; DestDir: "{app}"; Flags: external skipifsourcedoesntexist ignoreversion; Check: not HasConfigParam
Source: "{code:ConfigParam}"; DestDir: "{app}"; DestName: "{#PreconfigFile}"; Flags: external ignoreversion; Check: HasConfigParam

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#ExeName}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#ExeName}"; Tasks: desktopicon

[Registry]
; The same value the app's settings write: the quoted path of the executable.
Root: HKCU; Subkey: "{#RunKey}"; ValueType: string; ValueName: "{#AppName}"; ValueData: """{app}\{#ExeName}"""; Flags: uninsdeletevalue; Tasks: startatlogin

[Run]
Filename: "{app}\{#ExeName}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
{ The path after /CONFIG= on the setup command line, or '' when there is none. }
function ConfigParam(Param: String): String;
begin
  Result := ExpandConstant('{param:CONFIG}');
end;

function HasConfigParam: Boolean;
begin
  Result := ConfigParam('') <> '';
end;

{ A mistyped /CONFIG must fail the setup (exit code 1), not install an agent that asks
  the office worker for a server address. }
function InitializeSetup: Boolean;
begin
  Result := not HasConfigParam or FileExists(ConfigParam(''));
  if not Result then
    SuppressibleMsgBox(FmtMessage(CustomMessage('ConfigMissing'), [ConfigParam('')]),
      mbCriticalError, MB_OK, IDOK);
end;

{ A running agent holds its files open; it reconnects on the next start. }
procedure StopAgent;
var
  ResultCode: Integer;
begin
  Exec(ExpandConstant('{sys}\taskkill.exe'), '/F /IM {#ExeName}', '', SW_HIDE,
    ewWaitUntilTerminated, ResultCode);
end;

function PrepareToInstall(var NeedsRestart: Boolean): String;
begin
  StopAgent;
  Result := '';
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usUninstall then
    StopAgent;
  { The app's own checkbox may have written the Run value without the task: remove it too,
    so no login tries to start a program that is gone. }
  if CurUninstallStep = usPostUninstall then
    RegDeleteValue(HKEY_CURRENT_USER, '{#RunKey}', '{#AppName}');
end;
